# Helpers for the slurm tests (sourced). Each test: t_begin NAME; start the private cluster;
# submit the real scripts from jobs/; check; the EXIT trap stops the daemons and, on failure,
# prints the job outputs and the daemon logs. No slurmdbd: job states come from
# `scontrol show job` (kept for MinJobAge=600 s after the end) and from the output files.

T_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${OMPML_ROOT:=$(cd "$T_HERE/../.." && pwd)}"
export OMPML_ROOT
export OMPML_SLURM_DIR=${OMPML_SLURM_DIR:-/tmp/ompml-slurm-test-$(id -u)}
T_PASSED=0

t_log() { echo "[$T_NAME $(date +%H:%M:%S)] $*"; }
t_fail() { echo "[$T_NAME] FAIL: $*" >&2; exit 1; }
t_ok() { t_log "ok: $*"; }

# The cluster a test runs on. A suite that sources this file may redefine these three
# (tests/multinode/lib.sh: the namespaced cluster of tools/local-cluster.sh).
t_cluster_start() { "$T_HERE/cluster.sh" start && eval "$("$T_HERE/cluster.sh" env)"; }
t_cluster_stop() { "$T_HERE/cluster.sh" stop; }   # non-zero: something was left running
t_cluster_logs() { echo "$OMPML_SLURM_DIR/log/slurmctld.log" "$OMPML_SLURM_DIR/log/slurmd.log"; }

t_cleanup() {
  local rc=$?
  if ((rc != 0 || !T_PASSED)); then
    echo "----- $T_NAME failed (exit $rc); work dir kept: ${T_WORK:-} -----" >&2
    local f
    for f in "${T_WORK:-/nonexistent}"/*.out; do
      [[ -f $f ]] && { echo "=== $f" >&2; tail -n 40 "$f" >&2; }
    done
    for f in $(t_cluster_logs); do
      [[ -f $f ]] && { echo "=== $f" >&2; tail -n 15 "$f" >&2; }
    done
  fi
  if ! t_cluster_stop; then
    echo "[$T_NAME] FAIL: the cluster did not stop cleanly" >&2
    ((rc != 0)) || rc=1
  fi
  if ((rc == 0 && T_PASSED)) && [[ -n ${T_WORK:-} && ${T_KEEP:-0} != 1 ]]; then rm -rf "$T_WORK"; fi
  exit $rc
}

# t_begin NAME: work dir (the submit dir of every job), the cluster, the EXIT trap.
t_begin() {
  T_NAME=$1
  [[ $(id -u) -eq 0 ]] || t_fail "must run as root (the private Slurm runs SlurmUser=root)"
  T_WORK=$(mktemp -d "/tmp/ompml-$T_NAME.XXXXXX")
  trap t_cleanup EXIT
  trap 'exit 130' INT   # bash runs no EXIT trap when a signal kills it: exit instead
  trap 'exit 143' TERM
  t_cluster_start || t_fail "cluster did not start"
  cd "$T_WORK" || t_fail "cd $T_WORK"
  t_log "work dir $T_WORK, OMPML_ROOT=$OMPML_ROOT, OMPML_BIN=${OMPML_BIN:-unset}"
}

t_pass() { T_PASSED=1; t_log "PASS"; }

# t_need_bin PROG...: the real programs, from OMPML_BIN (set by ctest).
t_need_bin() {
  local p
  [[ -n ${OMPML_BIN:-} ]] || t_fail "OMPML_BIN not set (ctest sets it to the build's bin dir)"
  for p in "$@"; do
    [[ -x $OMPML_BIN/$p ]] || t_fail "$OMPML_BIN/$p not built"
  done
}

# t_submit SBATCH_ARGS...: submit from the work dir, print the job id.
t_submit() {
  local out
  out=$(sbatch --parsable "$@") || t_fail "sbatch $* failed"
  echo "${out%%;*}"
}

# t_states JOBID: JobState of the job (one line per array task).
t_states() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

# t_field JOBID FIELD: first value of FIELD=... in scontrol show job.
t_field() { scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2-; }

# t_wait JOBID [TIMEOUT_S]: until every task of the job has ended; prints the states.
t_wait() {
  local id=$1 deadline=$((SECONDS + ${2:-120})) s all
  while ((SECONDS < deadline)); do
    s=$(t_states "$id")
    all=1
    [[ -z $s ]] && all=0
    while read -r st; do
      case $st in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) ;;
        *) all=0 ;;
      esac
    done <<<"$s"
    if ((all)); then echo "$s"; return 0; fi
    sleep 0.5
  done
  scontrol show job "$id" >&2
  t_fail "job $id not finished after ${2:-120} s (states: $(echo $s))"
}

# t_expect JOBID STATE [TIMEOUT_S]: wait and check that every task ended in STATE.
t_expect() {
  local got
  got=$(t_wait "$1" "${3:-120}") || exit 1
  [[ $(sort -u <<<"$got") == "$2" ]] || t_fail "job $1 ended $(echo $got), expected $2"
  t_ok "job $1 $2"
}

# t_wait_file FILE [TIMEOUT_S]
t_wait_file() {
  local deadline=$((SECONDS + ${2:-60}))
  while ((SECONDS < deadline)); do
    [[ -s $1 ]] && return 0
    sleep 0.2
  done
  t_fail "$1 did not appear within ${2:-60} s"
}

# t_wait_line TEXT FILE [TIMEOUT_S]: until FILE has a line containing TEXT, a state the program
# announces (the timeout only ends a hang).
t_wait_line() {
  local deadline=$((SECONDS + ${3:-120}))
  while ((SECONDS < deadline)); do
    grep -qaF -- "$1" "$2" 2>/dev/null && return 0
    sleep 0.2
  done
  t_fail "$2: no line with '$1' within ${3:-120} s"
}

# t_grep PATTERN FILE: extended regex must match a line of FILE.
t_grep() { grep -Eq -- "$1" "$2" || t_fail "$2: no line matches /$1/"; }

# t_params_equal A.h5 B.h5: the checkpoints' /params are bitwise equal.
t_params_equal() {
  if command -v h5diff >/dev/null; then
    h5diff "$1" "$2" /params /params >/dev/null || t_fail "/params differ: h5diff $1 $2 /params /params"
  else
    /usr/bin/python3 - "$1" "$2" <<'EOF' || t_fail "/params differ between $1 and $2"
import sys, h5py, numpy as np
def flat(f):
    o = f["/params"]
    if isinstance(o, h5py.Dataset):
        return {"": o[...]}
    out = {}
    o.visititems(lambda n, d: out.__setitem__(n, d[...]) if isinstance(d, h5py.Dataset) else None)
    return out
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    pa, pb = flat(a), flat(b)
    assert pa.keys() == pb.keys(), (pa.keys(), pb.keys())
    for k in pa:
        assert pa[k].dtype == pb[k].dtype and pa[k].shape == pb[k].shape, k
        assert pa[k].tobytes() == pb[k].tobytes(), k
EOF
  fi
  t_ok "/params of $1 and $2 bitwise equal"
}

# t_synth FILE: a small synthetic dataset made by the real ompml-data.
# Sizes (env): T_FEATURES (default 64), T_CLASSES (4), T_TRAIN (2048), T_TEST (512).
t_synth() {
  "$OMPML_BIN/ompml-data" synth --train "${T_TRAIN:-2048}" --test "${T_TEST:-512}" \
    --features "${T_FEATURES:-64}" --classes "${T_CLASSES:-4}" --seed 7 -o "$1" ||
    t_fail "ompml-data synth failed"
}

# t_layers: --layers for the synthetic data
t_layers() { echo "${T_FEATURES:-64},${T_HIDDEN:-64},${T_CLASSES:-4}"; }

# t_final_acc FILE: test_acc from the last "final: test_acc ..." line; fails without one.
t_final_acc() {
  local line
  line=$(grep -a '^final: test_acc' "$1" | tail -n 1)
  [[ -n $line ]] || t_fail "$1: no 'final: test_acc' line"
  [[ $line =~ test_acc[=:[:space:]]+([0-9.eE+-]+) ]] || t_fail "$1: cannot read test_acc in '$line'"
  echo "${BASH_REMATCH[1]}"
}

# t_acc_ok ACC: a number in [0,1] and better than chance (1/T_CLASSES).
t_acc_ok() {
  awk -v a="$1" -v c="${T_CLASSES:-4}" 'BEGIN { exit !(a + 0 == a && a >= 0 && a <= 1 && a > 1.0 / c) }' ||
    t_fail "test_acc $1 is not in (1/${T_CLASSES:-4}, 1]"
  t_ok "test_acc $1"
}
