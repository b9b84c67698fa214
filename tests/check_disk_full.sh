#!/bin/bash
# A checkpoint on a full disk: ompml-train stops with exit 1 and ONE line on stderr that names the
# checkpoint, the cause (strerror: "No space left on device") and that the previous checkpoint is
# kept; that checkpoint is still valid at its step, and no temporary is left.
#
# The disk is a tmpfs one and a half checkpoints large, mounted in a private mount namespace
# (unshare --mount): the first checkpoint (step 5) fits, the second (step 10) does not, since
# its temporary is written beside the first. The mount disappears with the namespace, on every
# exit path. Needs root (mount); without it the test reports itself skipped (exit 77).
#   check_disk_full.sh OMPML_TRAIN OMPML_DATA WORKDIR
set -eu
train=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work/full" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

if ! unshare --mount true 2>/dev/null; then
  echo "SKIP: cannot make a mount namespace here (not root?)"
  exit 77
fi
"$data" synth --train 600 --test 100 --features 24 --classes 5 --seed 4 -o d.h5 >/dev/null
args=(--data d.h5 --layers 24,512,5 --batch 64 --seed 1)
"$train" "${args[@]}" --max-steps 1 --checkpoint one.h5 >/dev/null
size=$(stat -c %s one.h5)

rc=0
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount bash -c '
  set -e
  size=$1 train=$2; shift 2
  mount -t tmpfs -o size=$((size * 3 / 2)) tmpfs full
  trap "umount full" EXIT
  rc=0
  "$train" "$@" --max-steps 20 --checkpoint-every 5 --checkpoint full/ck.h5 >out.log 2>err.log || rc=$?
  ls -A full >left.txt # what the failed write left on the disk
  cp full/ck.h5 kept.h5
  exit $rc
' sh "$size" "$train" "${args[@]}" || rc=$?
[ -e full/ck.h5 ] && fail "the tmpfs is still mounted after the namespace ended"
cat err.log
[ $rc -eq 1 ] || { cat out.log; fail "exit $rc, expected 1"; }
[ "$(wc -l <err.log)" -eq 1 ] || fail "not one line on stderr"
want="ompml-train: error: step 10: cannot write checkpoint full/ck.h5: No space left on device; the previous checkpoint full/ck.h5 (step 5) is kept"
[ "$(cat err.log)" = "$want" ] || fail "expected: $want"
[ "$(cat left.txt)" = ck.h5 ] || fail "the disk holds more than the kept checkpoint: $(cat left.txt)"
/usr/bin/python3 -c "
import h5py, sys
step = int(h5py.File('kept.h5', 'r')['state'].attrs['step'])
sys.exit(0 if step == 5 else 'kept checkpoint at step %d, expected 5' % step)" || fail "the kept checkpoint"
"$train" --resume kept.h5 --max-steps 6 --checkpoint resumed.h5 >resume.log || { cat resume.log; fail "the kept checkpoint does not resume"; }
echo "PASS: the disk-full message is one line naming the checkpoint, the cause and the kept checkpoint"
