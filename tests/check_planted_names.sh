#!/bin/bash
# Every program that writes a file, run with entries planted at every temporary name that builds
# before io/atomic_file.hpp used (they were predictable: F.tmp.<host>.<pid>, F.tmp.<pid>,
# F.prev.tmp.<host>.<pid>, the trace's probe .ompml-trace-probe.<pid>). The pid is known: the
# entries are planted by a shell that then execs the program (`bash -c 'plant $$; exec prog'`).
# Planted, in turn: symbolic links to a victim file, links to a path that does not exist, and
# regular files (owned by another user when run as root); in a plain directory and in a group
# directory of mode 2770 (not sticky: the kernel's protected_symlinks does not apply). Each run
# must succeed, leave the victim and every planted entry byte for byte as they were (no file
# created where a dangling link points), also through the stale cleanup of later runs, and
# write its outputs as regular files. Writers: ompml-data synth and import-idx, ompml-train's
# checkpoint with its .prev rotation, --metrics and --trace, ompml-scale --trace, the sweep's
# result rows and jobs/sweep-gather.sh; and a resumed run's --metrics, which refuses to append
# through a link with one line naming the path.
#   check_planted_names.sh BIN_DIR WORKDIR
set -euo pipefail
bin=$(cd "$1" && pwd) work=$(realpath -m "$2") root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# plant KIND DIR PID NAME...: creates each DIR/NAME (%P in a name becomes PID, %H this host).
plant() {
  local kind=$1 dir=$2 pid=$3 host name
  host=$(uname -n)
  shift 3
  for name in "$@"; do
    name=${name//%P/$pid}
    name=$dir/${name//%H/$host}
    case $kind in
      link) ln -s "$dir/victim.txt" "$name" ;;
      dangling) ln -s "$dir/absent.txt" "$name" ;;
      file) printf 'planted %s\n' "$name" >"$name" ;;
    esac
    # As root, the entries belong to another user, as a neighbour's would.
    [ "$(id -u)" -ne 0 ] || chown -h 65534:65534 "$name"
    echo "$name" >>"$dir/planted.list"
  done
}
export -f plant

# check_planted KIND DIR WHAT: the victim and every entry planted so far are as they were.
check_planted() {
  local kind=$1 dir=$2 what=$3 name
  cmp -s "$dir/victim.txt" "$dir/victim.orig" || fail "$what: $dir/victim.txt changed"
  [[ ! -e $dir/absent.txt && ! -L $dir/absent.txt ]] || fail "$what: created $dir/absent.txt through a link"
  while read -r name; do
    case $kind in
      link) [[ -L $name && $(readlink "$name") == "$dir/victim.txt" ]] || fail "$what: link changed: $name" ;;
      dangling) [[ -L $name && $(readlink "$name") == "$dir/absent.txt" ]] || fail "$what: link changed: $name" ;;
      file) [[ -f $name && ! -L $name && $(cat "$name") == "planted $name" ]] ||
        fail "$what: planted file changed: $name" ;;
    esac
  done <"$dir/planted.list"
}

# PLANT_NAMES="NAME..." run_planted KIND DIR PROGRAM ARGS...: plants the names for the program's
# own pid in DIR, runs it there (its output in DIR/run.log), and checks that it succeeded and
# changed nothing planted.
run_planted() {
  local kind=$1 dir=$2 what
  shift 2
  what="planted ${kind}s in $dir: ${1##*/} $2"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  (cd "$dir" && bash -c 'plant "$0" "$PWD" $$ $PLANT_NAMES && exec "$@"' "$kind" "$@" >"$dir/run.log" 2>&1) ||
    { cat "$dir/run.log"; fail "$what: exited non-zero"; }
  check_planted "$kind" "$dir" "$what"
}

# regular FILE...: outputs are regular files, not links.
regular() { for f in "$@"; do [[ -f $f && ! -L $f ]] || fail "$f is not a regular file"; done; }

# Tiny IDX files (5 train and 2 test images of 4x3) for import-idx.
mkdir "$work/idx"
$py - "$work/idx" <<'PY'
import struct, sys
d = sys.argv[1]
for prefix, n in (("train", 5), ("t10k", 2)):
    with open(f"{d}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 4, 3) + bytes(range(n * 12)))
    with open(f"{d}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY

for mode in plain group; do
  for kind in link dangling file; do
    dir=$work/$mode-$kind
    mkdir "$dir"
    [ $mode = plain ] || chmod 2770 "$dir"
    printf 'precious data\n' >"$dir/victim.txt"
    cp "$dir/victim.txt" "$dir/victim.orig"
    : >"$dir/planted.list"

    PLANT_NAMES="d.h5.tmp.%H.%P d.h5.tmp.%P" run_planted $kind "$dir" \
      "$bin/ompml-data" synth --train 300 --test 60 --features 8 --classes 3 --seed 1 -o d.h5
    PLANT_NAMES="i.h5.tmp.%H.%P i.h5.tmp.%P" run_planted $kind "$dir" \
      "$bin/ompml-data" import-idx "$work/idx" -o i.h5
    "$bin/ompml-data" inspect "$dir/i.h5" >/dev/null || fail "import-idx wrote no valid dataset in $dir"

    # 10 steps per epoch, a checkpoint every 4: ck.h5 is rotated to ck.h5.prev during the run.
    train_names="ck.h5.tmp.%H.%P ck.h5.tmp.%P ck.h5.prev.tmp.%H.%P ck.h5.prev.tmp.%P
      t.json.tmp.%P t.json.tmp.%H.%P .ompml-trace-probe.%P m.jsonl.tmp.%H.%P m.jsonl.tmp.%P"
    PLANT_NAMES=$train_names run_planted $kind "$dir" "$bin/ompml-train" --data d.h5 --layers 8,6,3 \
      --epochs 2 --batch 30 --checkpoint ck.h5 --checkpoint-every 4 --metrics m.jsonl --trace t.json
    grep -q '^final: test_acc ' "$dir/run.log" || fail "no final line from ompml-train in $dir/run.log"
    regular "$dir/ck.h5" "$dir/ck.h5.prev" "$dir/m.jsonl" "$dir/t.json"
    "$bin/ompml-eval" --checkpoint "$dir/ck.h5" --data "$dir/d.h5" >/dev/null || fail "ck.h5 in $dir is no checkpoint"
    "$bin/ompml-eval" --checkpoint "$dir/ck.h5.prev" --data "$dir/d.h5" >/dev/null || fail "bad ck.h5.prev in $dir"
    [ "$(wc -l <"$dir/m.jsonl")" -eq 2 ] || fail "$dir/m.jsonl: expected 2 lines"
    $py -c "import json, sys; json.load(open(sys.argv[1]))" "$dir/t.json" || fail "$dir/t.json is not JSON"

    PLANT_NAMES="s.json.tmp.%P s.json.tmp.%H.%P .ompml-trace-probe.%P" run_planted $kind "$dir" \
      "$bin/ompml-scale" --layers 8,16,4 --batch 8 --steps 2 --warmup 1 --csv --trace s.json
    regular "$dir/s.json"
    $py -c "import json, sys; json.load(open(sys.argv[1]))" "$dir/s.json" || fail "$dir/s.json is not JSON"

    # The sweep's shell writers (jobs/): each task's result row (ompml_sweep_result, which used
    # .task-<id>.csv.tmp) and jobs/sweep-gather.sh (which used OUT.tmp.<pid>).
    mkdir "$dir/sweep"
    printf 'final: test_acc 0.5 (test)\n' >"$dir/train.log"
    for task in 0 1; do
      # shellcheck disable=SC2016 # expanded by the inner shell
      PLANT_NAMES="sweep/.task-$task.csv.tmp" run_planted $kind "$dir" bash -c 'source "$0/jobs/lib/common.sh" &&
        OMPML_RUN_DIR=. SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID=$1 SLURM_ARRAY_TASK_COUNT=2 sweep_cols=(lr) &&
        sweep_vals=(1e-3) && ompml_sweep_result sweep 0 1.5' "$root" $task
    done
    PLANT_NAMES="sweep/results.csv.tmp.%P" run_planted $kind "$dir" "$root/jobs/sweep-gather.sh" sweep
    regular "$dir/sweep/task-0.csv" "$dir/sweep/task-1.csv" "$dir/sweep/ntasks" "$dir/sweep/results.csv"
    [ "$(wc -l <"$dir/sweep/results.csv")" -eq 3 ] || fail "$dir/sweep/results.csv: expected header + 2 rows"

    # The writers' processes are gone now: a new run's stale cleanup must still leave the
    # planted entries alone (links, and other users' files; our own files it may remove).
    if [[ $kind != file || $(id -u) -eq 0 ]]; then
      PLANT_NAMES="" run_planted $kind "$dir" "$bin/ompml-train" --data d.h5 --layers 8,6,3 --epochs 1 --batch 30 \
        --checkpoint ck.h5 --metrics m.jsonl --trace t.json
      PLANT_NAMES="" run_planted $kind "$dir" "$bin/ompml-data" synth --train 300 --test 60 --features 8 \
        --classes 3 --seed 1 -o d.h5
    fi

    echo "check_planted_names: $mode directory, planted ${kind}s: every run succeeded, nothing planted changed"
  done

  # A new metrics log replaces a link at its path; a resumed run refuses to append through one.
  dir=$work/$mode-link
  ln -s "$dir/victim.txt" "$dir/new.jsonl"
  "$bin/ompml-train" --data "$dir/d.h5" --layers 8,6,3 --epochs 1 --batch 30 --metrics "$dir/new.jsonl" >/dev/null
  regular "$dir/new.jsonl"
  rm "$dir/m.jsonl" && ln -s "$dir/victim.txt" "$dir/m.jsonl"
  if (cd "$dir" && "$bin/ompml-train" --resume ck.h5 --epochs 3 --metrics "$dir/m.jsonl" >resume.log 2>err.txt); then
    fail "a resumed run appended to $dir/m.jsonl, a symbolic link"
  fi
  [ "$(wc -l <"$dir/err.txt")" -eq 1 ] || { cat "$dir/err.txt"; fail "not one line"; }
  grep -q -- "--metrics $dir/m.jsonl: is a symbolic link" "$dir/err.txt" || { cat "$dir/err.txt"; fail "message"; }
  cmp -s "$dir/victim.txt" "$dir/victim.orig" || fail "$mode: victim.txt changed through the metrics path"
  echo "check_planted_names: $mode directory: --metrics replaces a link, and refuses to append through one"
done
echo "check_planted_names: passed"
