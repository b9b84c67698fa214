#!/bin/sh
# ompml-data end to end: synth (both dtypes) -> h5py reads it correctly; inspect; the error
# format and exit codes; -o never replaces what is not a dataset ompml-data wrote (a checkpoint,
# a text file, a dataset made with h5py: refused, byte for byte unchanged) unless --force.
# usage: check_ompml_data.sh OMPML_DATA WORKDIR TESTS_DIR OMPML_TRAIN
set -eu
exe=$1 work=$2 here=$3 train=$4
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

for dtype in uint8 float32; do
  f=$work/synth_$dtype.h5
  rm -f "$f"
  "$exe" synth --train 600 --test 150 --features 12 --classes 5 --seed 11 --dtype $dtype -o "$f"
  /usr/bin/python3 "$here/check_dataset_h5py.py" "$f" 600 150 12 5 $dtype
  "$exe" inspect "$f" > "$work/inspect.txt"
  grep -q "/train: 600 samples" "$work/inspect.txt" || fail "inspect: train count"
  grep -q "label histogram: 0:" "$work/inspect.txt" || fail "inspect: histogram"
  grep -q "created_by = ompml-data synth" "$work/inspect.txt" || fail "inspect: attributes"
done

# Errors: one line, "ompml-data: error: ...", exit code 1.
set +e
"$exe" inspect "$work/missing.h5" 2> "$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "missing file: exit code $rc, expected 1"
[ "$(cat "$work/err.txt")" = "ompml-data: error: $work/missing.h5: no such file" ] || fail "message: $(cat "$work/err.txt")"
set +e
"$exe" import-idx "$work" -o "$work/x.h5" 2> "$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "import-idx of a dir without IDX files: exit code $rc"
[ "$(wc -l < "$work/err.txt")" -eq 1 ] || fail "import-idx error is not one line"
[ ! -e "$work/x.h5" ] || fail "failed import left $work/x.h5"

# -o targets. A checkpoint (a real one), a text file and a dataset made with h5py are refused by
# both writers with one line naming the path and what it is, exit 1, and stay byte for byte as
# they were; no temporary is left. A dataset ompml-data wrote is replaced; --force replaces the
# text file; a directory is refused even with --force.
t=$work/targets
rm -rf "$t" && mkdir -p "$t"
"$exe" synth --train 64 --test 16 --features 4 --classes 2 --seed 1 -o "$t/d.h5" >/dev/null
"$train" --data "$t/d.h5" --layers 4,8,2 --batch 16 --max-steps 2 --checkpoint "$t/ck.h5" >/dev/null
printf 'my notes\n' >"$t/notes.txt"
/usr/bin/python3 -c "
import h5py, numpy as np
with h5py.File('$t/theirs.h5', 'w') as f:
    for s in ('train', 'test'):
        f[s + '/images'] = np.zeros((4, 4), np.uint8)
        f[s + '/labels'] = np.zeros(4, np.int32)
    f.attrs['classes'] = 2
"
for f in ck.h5 notes.txt theirs.h5; do cp "$t/$f" "$t/$f.orig"; done
expect_refusal() { # WHAT FILE: both writers refuse FILE, naming it and WHAT
  for cmd in "synth --train 8 --test 4 --features 4 --classes 2 --seed 2" "import-idx /usr/share/datasets/fashion-mnist"; do
    set +e
    # shellcheck disable=SC2086 # cmd holds several words on purpose
    "$exe" $cmd -o "$t/$2" >"$t/out.txt" 2>"$t/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] || fail "$cmd -o $2: exit code $rc, expected 1"
    [ "$(wc -l <"$t/err.txt")" -eq 1 ] || fail "$cmd -o $2: not one line: $(cat "$t/err.txt")"
    grep -qF -- "-o $t/$2 $1" "$t/err.txt" || fail "$cmd -o $2: $(cat "$t/err.txt")"
    grep -qF -- "--force" "$t/err.txt" || fail "$cmd -o $2: the way out is not named: $(cat "$t/err.txt")"
    cmp -s "$t/$2" "$t/$2.orig" || fail "$cmd -o $2: the file changed"
  done
  echo "refused: $(cat "$t/err.txt")"
}
expect_refusal "is an ompml checkpoint" ck.h5
expect_refusal "is not an ompml dataset file (not even an HDF5 file)" notes.txt
expect_refusal "is a dataset file that ompml-data did not write" theirs.h5
! ls "$t" | grep -q '\.tmp\.' || fail "a temporary was left: $(ls "$t")"
"$exe" synth --train 64 --test 16 --features 4 --classes 2 --seed 3 -o "$t/d.h5" >/dev/null || fail "own dataset not replaced"
"$exe" synth --train 64 --test 16 --features 4 --classes 2 --seed 3 -o "$t/notes.txt" --force >/dev/null ||
  fail "--force did not replace the text file"
"$exe" inspect "$t/notes.txt" >/dev/null || fail "--force wrote no dataset"
mkdir -p "$t/dir"
if "$exe" synth --train 8 --test 4 --features 4 --classes 2 --seed 2 -o "$t/dir" --force 2>"$t/err.txt"; then
  fail "a directory was replaced with --force"
fi
grep -qF "is a directory" "$t/err.txt" || fail "directory: $(cat "$t/err.txt")"
echo "check_ompml_data: passed"
