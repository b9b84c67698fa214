# Helpers for the multinode tests (sourced): the slurm tests' helpers (tests/slurm/lib.sh:
# t_begin, t_submit, t_expect, t_wait_line, ...) on a cluster of T_NODES (default 2) nodes in
# network namespaces (tools/local-cluster.sh) instead of the one-node cluster. Each test starts
# its own cluster; the EXIT trap takes it down and fails the test if anything of it is left
# (namespaces, mounts, processes). Slurm's clients run on the cluster's head node, where the
# controller is: sbatch, scontrol, ... below are functions that go through
# `local-cluster.sh exec`.
source "$(dirname "${BASH_SOURCE[0]}")/../slurm/lib.sh"
T_MN_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LC=$OMPML_ROOT/tools/local-cluster.sh
# Its own state dir and namespace names: a cluster a user has up is left alone.
export OMPML_LC_DIR=${OMPML_LC_DIR:-/tmp/ompml-lc-test-$(id -u)}
export OMPML_LC_PREFIX=${OMPML_LC_PREFIX:-ompml-lct}

t_cluster_start() { "$LC" up "${T_NODES:-2}"; }
t_cluster_stop() { "$LC" down && "$LC" leftovers; }
t_cluster_logs() { echo "$OMPML_LC_DIR/log/slurmctld.log" "$OMPML_LC_DIR"/log/slurmd-*.log; }

sbatch() { "$LC" exec sbatch "$@"; }
scontrol() { "$LC" exec scontrol "$@"; }
scancel() { "$LC" exec scancel "$@"; }
sinfo() { "$LC" exec sinfo "$@"; }
squeue() { "$LC" exec squeue "$@"; }
srun() { "$LC" exec srun "$@"; }

# t_node_state NODE: its state as the controller sees it (idle, allocated, down*, ...).
t_node_state() { sinfo -h -N -n "$1" -o %T 2>/dev/null | head -n 1; }

# t_wait_node_state NODE REGEX [TIMEOUT_S]: until NODE's state matches REGEX.
t_wait_node_state() {
  local deadline=$((SECONDS + ${3:-120})) s=""
  while ((SECONDS < deadline)); do
    s=$(t_node_state "$1")
    [[ $s =~ $2 ]] && return 0
    sleep 0.5
  done
  t_fail "node $1 is '$s', not /$2/, after ${3:-120} s"
}

# Where the training runs: the rank-count tests' data and model (tests/mpi/check_train_mpi.sh):
# 258 training rows, so with --batch 64 an epoch is 5 steps and its last batch has 2 rows (on 4
# ranks two ranks get none).
t_mpi_data() {
  "$OMPML_BIN/ompml-data" synth --train 258 --test 100 --features 24 --classes 5 --seed 4 -o "$1" >/dev/null ||
    t_fail "ompml-data synth failed"
}
T_MPI_ARGS=(--layers 24,32,5 --batch 64 --optimizer adam --lr 1e-2 --clip 1 --seed 3)
# The bound on max|a - b| / max|a| per tensor between rank counts: RTOL of
# tests/mpi/check_train_mpi.sh, which says why (the runs differ only in the order of the
# gradient sum: measured ~1e-7 over 30 steps).
T_RTOL=1e-5
t_compare() { /usr/bin/python3 "$OMPML_ROOT/tests/mpi/compare_runs.py" "$@" || t_fail "compare_runs.py $*"; }
t_ckpt_valid() { /usr/bin/python3 "$OMPML_ROOT/tests/check_checkpoint_h5py.py" schema "$1" >/dev/null || t_fail "$1 is not a valid checkpoint"; }
t_ckpt_step() { /usr/bin/python3 -c 'import h5py,sys; print(int(h5py.File(sys.argv[1],"r")["state"].attrs["step"]))' "$1"; }
