#!/bin/bash
# scaling.sh: the scaling study. Runs ompml-scale (one timed training step setup per run) over
# rank x thread configurations, model widths and weak/strong modes, keeps the median of
# --repeat runs per point, then tools/scaling.py adds parallel efficiency and draws the PNG.
#
# Local (mpirun on this machine; the default):
#   tools/scaling.sh            # weak 1x1 2x1, strong 1x1 2x1 1x2; widths 128 512 2048 4096
#   tools/scaling.sh --configs "1x1 2x1 4x1" --widths "512 2048" --out runs/scaling-big
#   tools/scaling.sh --mpirun-args "--mca coll_libnbc_iallreduce_algorithm 1"
#   tools/scaling.sh --traces   # also a timeline of each point's first run: trace-<point>.json
#                               # (tools/trace_report.py FILE --png OUT.png draws it)
#   tools/scaling.sh --widths 4096 -- --grad-transport mpi --grad-dtype bf16   # bf16 gradient sums
#                               # (the CSV's grad_dtype column; docs/results/precision.md)
# In a Slurm allocation (jobs/scaling.sbatch; the contract of jobs/README.md): one run per
# node count through $OMPML_LAUNCHER NODES $OMPML_BIN/ompml-scale ..., threads from Slurm:
#   tools/scaling.sh --nodes "1 2 4" --out RUN_DIR -- EXTRA-OMPML-SCALE-ARGS...
#
# Output in --out: raw.csv (every run), scaling.csv (the median run of each point),
# results.csv + table.md (with efficiency and speedup), scaling.png, and one log per run.
# Efficiency = (samples/s per core) / (the same of the 1-core point): weak t1/tP, strong
# t1/(P tP), with cores = ranks x threads (see tools/scaling.py).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
weak_configs="1x1 2x1"        # RANKSxTHREADS; weak scaling grows the work with the ranks
strong_configs="1x1 2x1 1x2"  # strong: the same work on more ranks, or on more threads
widths="128 512 2048 4096"
modes="weak strong"
weak_batch=128          # rows per rank
strong_batch=256        # rows in total
steps=20
warmup=3
repeat=3
mpirun_args=${OMPML_MPIRUN_ARGS:-}  # extra mpirun flags, word-split (e.g. MCA settings)
traces=0                # 1: --trace for the first run of every point
bind=none               # none | core (core: --map-by slot:PE=THREADS --bind-to core)
nodes=""                # set: Slurm mode
out=""
bin=${OMPML_BIN:-}
extra=()

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
  case $1 in
    --configs) weak_configs=$2; strong_configs=$2; shift 2 ;;
    --weak-configs) weak_configs=$2; shift 2 ;;
    --strong-configs) strong_configs=$2; shift 2 ;;
    --mpirun-args) mpirun_args=$2; shift 2 ;;
    --widths) widths=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --weak-batch) weak_batch=$2; shift 2 ;;
    --strong-batch) strong_batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --bind) bind=$2; shift 2 ;;
    --traces) traces=1; shift ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "scaling.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

[[ -n $bin ]] || bin=$root/build/host/bin
[[ $bin == /* ]] || bin=$root/$bin
prog=$bin/ompml-scale
[[ -x $prog ]] || { echo "scaling.sh: $prog not found: build it (cmake --build build/host --target ompml-scale) or pass --bin" >&2; exit 1; }
[[ -n $out ]] || out=runs/scaling-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
cores=$(nproc)
if (($(id -u) == 0)); then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

# points MODE: sets `points` to "ranks threads nodes" lines. Slurm: the node counts (threads
# from Slurm); local: the RxT configurations of the mode.
points() {
  pts=()
  if [[ -n $nodes ]]; then
    [[ -n ${OMPML_LAUNCHER:-} ]] || { echo "scaling.sh: --nodes needs OMPML_LAUNCHER (jobs/lib/launch.sh)" >&2; exit 1; }
    local per_node=${SLURM_NTASKS_PER_NODE:-$(( ${SLURM_NTASKS:-1} / ${SLURM_NNODES:-1} ))}
    per_node=${per_node%%"("*}   # Slurm may write "4(x2)"
    for n in $nodes; do
      if ((n > ${SLURM_NNODES:-1})); then echo "scaling.sh: skip $n nodes: only ${SLURM_NNODES:-1} allocated" >&2; continue; fi
      pts+=("$((n * per_node)) ${SLURM_CPUS_PER_TASK:-1} $n")
    done
    return
  fi
  local list=$weak_configs
  [[ $1 == strong ]] && list=$strong_configs
  for c in $list; do
    [[ $c =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "scaling.sh: bad config '$c' (want RANKSxTHREADS)" >&2; exit 2; }
    pts+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]} -")
  done
}

# launch RANKS THREADS NODES ARGS...: one ompml-scale run.
launch() {
  local r=$1 t=$2 n=$3
  shift 3
  if [[ -n $nodes ]]; then
    OMP_NUM_THREADS=$t "$OMPML_LAUNCHER" "$n" "$prog" "$@"
    return
  fi
  local mpi=(mpirun -np "$r" -x "OMP_NUM_THREADS=$t")
  # More threads than cores would time the scheduler, not ompml: allow it, but say so.
  ((r * t > cores)) && mpi+=(--oversubscribe)
  if [[ $bind == core ]] && ((r * t <= cores)); then
    mpi+=(--map-by "slot:PE=$t" --bind-to core)
  else
    # Open MPI binds one core per rank for np <= 2: threads of a rank would share it.
    mpi+=(--bind-to none)
  fi
  # shellcheck disable=SC2206
  mpi+=($mpirun_args)
  OMP_NUM_THREADS=$t "${mpi[@]}" "$prog" "$@"
}

header=$("$prog" --csv --header --layers 2,2 --steps 1 --warmup-steps 0 2>/dev/null | head -n 1)
echo "$header" >"$out/raw.csv"
echo "$header" >"$out/scaling.csv"
# shellcheck disable=SC2016  # the single quotes are literal text in the log line
{
  echo "# scaling study $(date -Is) on $(hostname)"
  echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores; load: $(uptime | sed 's/.*load average: //')"
  echo "# $0 --weak-configs '$weak_configs' --strong-configs '$strong_configs' --widths '$widths' --modes '$modes' --weak-batch $weak_batch --strong-batch $strong_batch --steps $steps --warmup $warmup --repeat $repeat --bind $bind${mpirun_args:+ --mpirun-args '$mpirun_args'} ${nodes:+--nodes '$nodes'} ${extra[*]:+-- ${extra[*]}}"
} >"$out/machine.txt"
cat "$out/machine.txt"

status=0
for mode in $modes; do
  batch=$weak_batch
  [[ $mode == strong ]] && batch=$strong_batch
  points "$mode"
  for w in $widths; do
    layers=784,$w,$w,10
    for p in "${pts[@]}"; do
      read -r r t n <<<"$p"
      tag=$mode-784-$w-$w-10-${r}x$t
      rows=()
      for ((i = 1; i <= repeat; ++i)); do
        log=$out/$tag-$i.log
        trace=()
        ((traces && i == 1)) && trace=(--trace "$out/trace-$tag.json")
        if launch "$r" "$t" "$n" --mode "$mode" --layers "$layers" --batch "$batch" --steps "$steps" \
          --warmup-steps "$warmup" --csv "${trace[@]}" "${extra[@]}" >"$log" 2>&1; then
          row=$(grep -a "^$mode,${layers//,/-}," "$log" | tail -n 1 || true)
          if [[ -n $row ]]; then rows+=("$row"); echo "$row" >>"$out/raw.csv"; fi
        else
          echo "scaling.sh: $tag run $i failed (see $log)" >&2
          status=1
        fi
      done
      ((${#rows[@]})) || continue
      # The median run by step_ms (column 9): one noisy run on a shared machine does not move it.
      best=$(printf '%s\n' "${rows[@]}" | sort -t, -k9,9g | sed -n "$(((${#rows[@]} + 1) / 2))p")
      echo "$best" >>"$out/scaling.csv"
      printf '%-40s step %8s ms  comm %8s ms  allreduce %8s ms\n' "$tag" \
        "$(cut -d, -f9 <<<"$best")" "$(cut -d, -f12 <<<"$best")" "$(cut -d, -f14 <<<"$best")"
    done
  done
done

/usr/bin/python3 "$root/tools/scaling.py" "$out/scaling.csv" --out "$out" --title "$(sed -n 2p "$out/machine.txt" | sed 's/^# //')" || status=1
echo "scaling.sh: results in $out (scaling.csv, results.csv, table.md, scaling.png)"
exit $status
