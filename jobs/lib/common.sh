# Shared logic of the ompml batch scripts: environment, launch, the USR1 -> checkpoint ->
# requeue protocol, and argument merging. Sourced (bash) by jobs/*.sbatch after their site
# block; see jobs/README.md for the protocol. Nothing here is site-specific: the site lives
# in each script's "NOTE: change for your cluster" block.
#
# Variables read (all optional; the scripts' site blocks set most of them):
#   OMPML_ROOT        repository root (the scripts default it to $SLURM_SUBMIT_DIR)
#   OMPML_BIN         directory holding ompml-train, ompml-bench (relative to OMPML_ROOT ok)
#   OMPML_MODULES     modules to `module load`, space separated
#   OMPML_LAUNCH      srun (default; srun --mpi=pmix) or mpirun (Open MPI inside the allocation)
#   OMPML_SRUN_ARGS, OMPML_MPIRUN_ARGS   extra launcher arguments (word-split)
#   OMPML_RUN_DIR     per-job directory for checkpoint, metrics and log
#                     (default runs/<job name>-<job id>, or -<array job>_<task> in arrays)
#   OMPML_REQUEUE     1 (default): requeue the job when ompml-train exits 85; 0: just exit 85
#   OMPML_TRAIN_CMD   harness self-test only: replaces "$OMPML_BIN/ompml-train"

# The exit status ompml-train uses for "stopped on SIGUSR1 after writing its checkpoint".
readonly OMPML_EXIT_CHECKPOINTED=85

ompml_log() { echo "[ompml-job $(date +%H:%M:%S)] $*"; }
ompml_die() { echo "[ompml-job $(date +%H:%M:%S)] error: $*" >&2; exit 1; }

# ompml_setup: modules, paths, thread counts; prints what the job will use.
ompml_setup() {
  set -o pipefail
  if [[ -n ${OMPML_MODULES:-} ]]; then
    command -v module >/dev/null 2>&1 || ompml_die "OMPML_MODULES='$OMPML_MODULES' but no 'module' command"
    # shellcheck disable=SC2086
    module load $OMPML_MODULES || ompml_die "module load $OMPML_MODULES failed"
  fi
  [[ $OMPML_BIN == /* ]] || OMPML_BIN=$OMPML_ROOT/$OMPML_BIN
  : "${OMPML_LAUNCH:=srun}"
  case $OMPML_LAUNCH in
    srun | mpirun) ;;
    *) ompml_die "OMPML_LAUNCH must be srun or mpirun, not '$OMPML_LAUNCH'" ;;
  esac
  # one OpenMP thread per CPU Slurm gave the task
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
  if [[ $OMPML_LAUNCH == mpirun && $(id -u) -eq 0 ]]; then
    # Open MPI refuses root unless told (only matters on test machines that run jobs as root)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  local tag=${SLURM_JOB_ID:-local}
  [[ -n ${SLURM_ARRAY_JOB_ID:-} ]] && tag=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
  : "${OMPML_RUN_DIR:=runs/${SLURM_JOB_NAME:-ompml}-$tag}"
  mkdir -p "$OMPML_RUN_DIR" || ompml_die "cannot create run dir $OMPML_RUN_DIR"
  ompml_log "job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}:" \
    "${SLURM_NTASKS:-1} ranks x $OMP_NUM_THREADS threads, launch=$OMPML_LAUNCH," \
    "bin=$OMPML_BIN, run dir=$OMPML_RUN_DIR"
}

# ompml_need PROG: fail early and clearly if a program is not built.
ompml_need() {
  [[ -x $OMPML_BIN/$1 ]] || ompml_die "$OMPML_BIN/$1 not found: build it, or set OMPML_BIN in the site block (or the environment)"
}

# ompml_launch_cmd: set OMPML_CMD to the launcher prefix that starts a program on the job's
# ranks, one rank per task (per GPU in the GPU scripts). OMPML_STEP_NODES / OMPML_STEP_NTASKS
# narrow the step to part of the allocation (the scaling study).
ompml_launch_cmd() {
  local ntasks=${OMPML_STEP_NTASKS:-${SLURM_NTASKS:-1}}
  local cpt=${SLURM_CPUS_PER_TASK:-1}
  if [[ ${OMPML_LAUNCH:-srun} == srun ]]; then
    # --mpi=pmix: Open MPI needs PMIx; with the wrong PMI it starts N copies of rank 0 of 1.
    # --cpus-per-task again: since Slurm 22.05 srun does not inherit it from sbatch.
    OMPML_CMD=(srun --mpi=pmix --kill-on-bad-exit=1 --ntasks="$ntasks" --cpus-per-task="$cpt")
    [[ -n ${OMPML_STEP_NODES:-} ]] && OMPML_CMD+=(--nodes="$OMPML_STEP_NODES")
    # shellcheck disable=SC2206
    OMPML_CMD+=(${OMPML_SRUN_ARGS:-})
  else
    # mpirun inside the allocation reads the node list from Slurm; no core binding so a
    # rank's OpenMP threads spread over its CPUs (Open MPI binds 1 core/rank by default).
    OMPML_CMD=(mpirun -np "$ntasks" --bind-to none -x OMP_NUM_THREADS)
    if [[ -n ${OMPML_STEP_NODES:-} ]]; then
      OMPML_CMD+=(--map-by "ppr:$((ntasks / OMPML_STEP_NODES)):node")
    fi
    # shellcheck disable=SC2206
    OMPML_CMD+=(${OMPML_MPIRUN_ARGS:-})
  fi
}

# ompml_launch PROG ARGS...: run PROG on the job's ranks in the foreground.
ompml_launch() {
  ompml_launch_cmd
  ompml_log "launch: ${OMPML_CMD[*]} $*"
  "${OMPML_CMD[@]}" "$@"
}

# --- argument merging ------------------------------------------------------------------
# Scripts hold defaults as "--flag value" pairs; what the user passes after the script name
# replaces a default with the same flag, so `sbatch jobs/train.sbatch --epochs 1` needs no
# ompml-train support for repeated flags.

# _ompml_keys ARGS...: the --flag names present (as "--flag", '=value' stripped), one a line.
_ompml_keys() {
  local a
  for a in "$@"; do
    [[ $a == --?* ]] && echo "${a%%=*}"
  done
}

# _ompml_drop OUT KEYS_NEWLINE_LIST ARGS...: ARGS without "--k v" / "--k=v" for each key k.
# Only used on defaults and on keys that are known to take a value.
_ompml_drop() {
  local -n _out=$1
  local keys=$2
  shift 2
  _out=()
  while (($#)); do
    local a=$1 k=${1%%=*}
    if [[ $a == --?* ]] && grep -qxF -- "$k" <<<"$keys"; then
      if [[ $a == *=* ]]; then shift; else shift 2 2>/dev/null || shift; fi
      continue
    fi
    _out+=("$a")
    shift
  done
}

# ompml_merge_args OUT DEFAULTS_ARRAY USER_ARRAY [FORCED_ARRAY]: OUT = defaults the user did
# not override, then the user's arguments, then FORCED (which wins over both: sweep table
# columns, --resume auto on restart).
ompml_merge_args() {
  local -n _res=$1 _def=$2 _usr=$3
  local -a _forced=() d u
  if [[ -n ${4:-} ]]; then local -n _f=$4; _forced=("${_f[@]}"); fi
  local fkeys ukeys
  fkeys=$(_ompml_keys "${_forced[@]}")
  ukeys=$(_ompml_keys "${_usr[@]}")
  _ompml_drop d "$fkeys"$'\n'"$ukeys" "${_def[@]}"
  _ompml_drop u "$fkeys" "${_usr[@]}"
  _res=("${d[@]}" "${u[@]}" "${_forced[@]}")
}

# ompml_arg_value FLAG ARGS...: the value given for FLAG ("--f v" or "--f=v"; last wins).
ompml_arg_value() {
  local flag=$1 v="" found=1
  shift
  while (($#)); do
    if [[ $1 == "$flag" ]]; then v=${2:-}; found=0; shift; elif [[ $1 == "$flag="* ]]; then v=${1#*=}; found=0; fi
    shift
  done
  echo "$v"
  return $found
}

# --- ompml-train with the checkpoint/requeue protocol ------------------------------------

_ompml_on_usr1() {
  OMPML_GOT_USR1=1
  ompml_log "got SIGUSR1 (time limit or preemption near): asking ompml-train to checkpoint and stop"
  if [[ -n ${OMPML_STEP_PID:-} ]]; then
    kill -USR1 "$OMPML_STEP_PID" 2>/dev/null || true
  fi
}

# ompml_train DEFAULTS_ARRAY USER_ARRAY [FORCED_ARRAY]: run ompml-train on all ranks with
# --checkpoint/--metrics in the run dir (unless the user gave them) and, on a restart of a
# requeued job, --resume auto. Returns ompml-train's exit status; on status 85 the job is
# requeued (OMPML_REQUEUE=1) and this function does not return.
# Output goes to the job's output file and to $OMPML_RUN_DIR/train.log.
ompml_train() {
  local -n _tdef=$1 _tusr=$2
  local -a def=("${_tdef[@]}") forced=() args
  if [[ -n ${3:-} ]]; then local -n _tf=$3; forced=("${_tf[@]}"); fi
  def+=(--checkpoint "$OMPML_RUN_DIR/ckpt.h5" --metrics "$OMPML_RUN_DIR/metrics.jsonl")
  if ((${SLURM_RESTART_COUNT:-0} > 0)); then
    # a requeued job continues from its own latest good checkpoint, even if the first run
    # was started from another one with --resume FILE
    forced+=(--resume auto)
  fi
  ompml_merge_args args def _tusr forced
  local ckpt
  ckpt=$(ompml_arg_value --checkpoint "${args[@]}")
  export OMPML_CHECKPOINT=$ckpt

  local -a prog
  if [[ -n ${OMPML_TRAIN_CMD:-} ]]; then
    read -r -a prog <<<"$OMPML_TRAIN_CMD"   # harness self-test stand-in
  else
    ompml_need ompml-train
    prog=("$OMPML_BIN/ompml-train")
  fi

  OMPML_GOT_USR1=0
  OMPML_STEP_PID=""
  trap _ompml_on_usr1 USR1
  # The step runs in the background so bash can run the USR1 trap while it waits; it is
  # started directly (not through a function) so $! is the launcher's pid: srun and mpirun
  # forward USR1 to every rank.
  local log=$OMPML_RUN_DIR/train.log teefd teepid rc log_start
  log_start=$(stat -c %s "$log" 2>/dev/null || echo 0)   # this run's output starts here
  exec {teefd}> >(tee -a "$log")
  teepid=$!
  ompml_launch_cmd
  ompml_log "launch: ${OMPML_CMD[*]} ${prog[*]} ${args[*]}"
  "${OMPML_CMD[@]}" "${prog[@]}" "${args[@]}" >&"$teefd" 2>&1 &
  OMPML_STEP_PID=$!
  ((OMPML_GOT_USR1)) && kill -USR1 "$OMPML_STEP_PID" 2>/dev/null
  # `wait` returns early (status > 128) whenever the trap runs: keep waiting while the step
  # lives, then collect its real status
  while kill -0 "$OMPML_STEP_PID" 2>/dev/null; do
    wait "$OMPML_STEP_PID"
  done
  wait "$OMPML_STEP_PID"
  rc=$?
  trap - USR1
  OMPML_STEP_PID=""
  exec {teefd}>&-
  wait "$teepid" 2>/dev/null
  # ompml-train prints "final: ..." whenever it exits 0. A launcher can exit 0 without it: seen
  # with srun when a step's launch failed on one node ("Timed out waiting for job step to
  # complete", a requeued job after a node failure); the job would be COMPLETED untrained.
  if ((rc == 0)) && ! tail -c "+$((log_start + 1))" "$log" | grep -qa '^final: '; then
    ompml_log "the launcher exited 0 but ompml-train printed no 'final:' line: the ranks did not all run to the end; exiting 1"
    rc=1
  fi

  if ((rc == OMPML_EXIT_CHECKPOINTED)); then
    ompml_log "ompml-train checkpointed to ${ckpt:-?} and stopped (exit $rc)"
    ompml_requeue
  elif ((rc != 0)); then
    ompml_log "ompml-train failed (exit $rc)$( ((OMPML_GOT_USR1)) && echo "; a USR1 had been forwarded")"
  elif ((OMPML_GOT_USR1)); then
    ompml_log "ompml-train finished (exit 0) although USR1 was forwarded: nothing to resume"
  else
    ompml_log "ompml-train finished (exit 0)"
  fi
  return "$rc"
}

# ompml_requeue: put this job back in the queue; Slurm then kills this script and later
# starts it again with SLURM_RESTART_COUNT+1 (same job id, same run dir).
ompml_requeue() {
  if [[ ${OMPML_REQUEUE:-1} != 1 ]]; then
    ompml_log "OMPML_REQUEUE=${OMPML_REQUEUE}: not requeueing; resubmit with --resume auto to continue"
    exit "$OMPML_EXIT_CHECKPOINTED"
  fi
  ompml_log "requeueing job $SLURM_JOB_ID (restart $((${SLURM_RESTART_COUNT:-0} + 1)) will pass --resume auto)"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    ompml_log "scontrol requeue failed (was the job submitted with --requeue?); exiting $OMPML_EXIT_CHECKPOINTED"
    exit "$OMPML_EXIT_CHECKPOINTED"
  fi
  # Slurm kills the batch script once the requeue is processed; do not run anything after it
  local i
  for ((i = 0; i < 60; i++)); do sleep 1; done
  ompml_log "still running 60 s after the requeue; exiting $OMPML_EXIT_CHECKPOINTED"
  exit "$OMPML_EXIT_CHECKPOINTED"
}

# --- sweep (job array) helpers -----------------------------------------------------------

# ompml_sweep_row TABLE INDEX COLS_OUT VALS_OUT: the header and data row INDEX (0-based) of a
# tab-separated table; '#' lines and blank lines are skipped.
ompml_sweep_row() {
  local table=$1 idx=$2
  local -n _cols=$3 _vals=$4
  [[ -r $table ]] || ompml_die "sweep table $table not readable"
  local line n=-1 header=""
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    if [[ -z $header ]]; then header=$line; continue; fi
    n=$((n + 1))
    if ((n == idx)); then
      IFS=$'\t' read -r -a _cols <<<"$header"
      IFS=$'\t' read -r -a _vals <<<"$line"
      ((${#_cols[@]} == ${#_vals[@]})) ||
        ompml_die "$table: row $idx has ${#_vals[@]} columns, the header ${#_cols[@]}"
      return 0
    fi
  done <"$table"
  ompml_die "$table has $((n + 1)) rows; no row for array task $idx (fix #SBATCH --array)"
}

# ompml_write_file FILE: writes stdin to FILE atomically and never through a link placed in a
# shared directory: into a new file beside it made by mktemp (exclusive, unpredictable name),
# given the permissions a new file would have, then renamed over FILE (mv -T: a link at FILE
# is replaced, a directory there is an error). The gather never sees half a file.
ompml_write_file() {
  local file=$1 tmp
  tmp=$(mktemp "$file.tmp.XXXXXXXXXX") || return 1
  if cat >"$tmp" && chmod "$(printf '%o' $((0666 & ~$(umask))))" "$tmp" && mv -fT "$tmp" "$file"; then
    return 0
  fi
  rm -f "$tmp"
  return 1
}

# ompml_csv_quote STR: STR as one CSV field.
ompml_csv_quote() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; }

# ompml_sweep_result DIR RC SECONDS: write DIR/task-<id>.csv, a header and one row:
#   array_job,task,<table columns>,exit_code,test_acc,seconds,final
# test_acc and final come from the last "final: test_acc ..." line ompml-train printed.
ompml_sweep_result() {
  local dir=$1 rc=$2 secs=$3 final acc="" i
  mkdir -p "$dir" || ompml_die "cannot create $dir"
  final=$(grep -a '^final: ' "$OMPML_RUN_DIR/train.log" 2>/dev/null | tail -n 1)
  if [[ $final =~ test_acc[=:[:space:]]+([-+0-9.eEnaN]+) ]]; then acc=${BASH_REMATCH[1]}; fi
  local header="array_job,task" row="$SLURM_ARRAY_JOB_ID,$SLURM_ARRAY_TASK_ID"
  for i in "${!sweep_cols[@]}"; do
    header+=",${sweep_cols[i]}"
    row+=",$(ompml_csv_quote "${sweep_vals[i]}")"
  done
  header+=",exit_code,test_acc,seconds,final"
  row+=",$rc,$acc,$secs,$(ompml_csv_quote "$final")"
  printf '%s\n%s\n' "$header" "$row" | ompml_write_file "$dir/task-$SLURM_ARRAY_TASK_ID.csv" ||
    ompml_die "cannot write $dir/task-$SLURM_ARRAY_TASK_ID.csv"
  echo "${SLURM_ARRAY_TASK_COUNT:-}" | ompml_write_file "$dir/ntasks" || ompml_die "cannot write $dir/ntasks"
  ompml_log "sweep result: $dir/task-$SLURM_ARRAY_TASK_ID.csv (exit $rc, test_acc ${acc:-none})"
}
