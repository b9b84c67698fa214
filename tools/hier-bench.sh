#!/usr/bin/env bash
# hier-bench.sh: the hierarchical gradient sum against the flat MPI sum on the local cluster
# (tools/local-cluster.sh), 2 nodes x 2 ranks: ompml-scale (weak scaling, synthetic data) with
# --grad-transport hier, mpi (its default fp32 sum, MPI_Iallreduce) and mpi with the fp32 exchange
# in alternating rounds (forward order in odd rounds, reversed in even ones), then the medians
# over rounds of the gradient-sum time per step (comm_ms) and the step,
# the hierarchical phases, and the per-round ratios hier/mpi. Also once per round one node x 2
# ranks (the node's shared-memory sum alone) and 1 rank (compute alone), for the two-level model
# (tools/multinode_model.py). Brings up its own 2-node cluster (state dir and namespace names of
# its own) and takes it down on every exit path. Run as root, on an otherwise idle machine: the
# nodes share its cores.
#
#   tools/hier-bench.sh                                   # 5 rounds, 784-4096-4096-10 (20M params)
#   tools/hier-bench.sh --rounds 3 --layers 784,1024,1024,10 --batch 32 --out runs/hb
#
# Output in --out (default runs/hier-bench-<date>): scale.csv (ompml-scale's CSV rows with a
# round, a case and a transport column in front), summary.md, machine.txt and the logs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=5
layers=784,4096,4096,10
batch=32
steps=10
warmup=3
rate=none
summary_only=0
bin=${OMPML_BIN:-$root/build/host/bin}
out=""
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --summary-only) summary_only=1; shift ;; # the summary of --out's scale.csv again, no runs
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "hier-bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
summarize() {
  /usr/bin/python3 - "$out" <<'PY'
# Medians over rounds, and per round the ratios hier/mpi (paired: the same machine state).
import csv, statistics as st, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/scale.csv")))
def col(case, t, key):
    return [float(r[key]) for r in rows if r["case"] == case and r["transport_asked"] == t]
def med(v):
    return st.median(v) if v else float("nan")
lines = ["| case | transport | rounds | step ms | comm ms | compute ms | node ms | inter-node ms | share ms | plain allreduce ms |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for case, t in [("2x2", "hier"), ("2x2", "mpi"), ("2x2", "mpi:exchange"), ("1x2", "shm"), ("1x1", "auto")]:
    k = lambda key: med(col(case, t, key))
    got = [r["transport"] for r in rows if r["case"] == case and r["transport_asked"] == t]
    lines.append(f"| {case} | {t} ({got[0] if got else '?'}) | {len(got)} | {k('step_ms'):.1f} | {k('comm_ms'):.1f} | "
                 f"{k('compute_ms'):.1f} | {k('node_ms'):.1f} | {k('inter_ms'):.1f} | {k('share_ms'):.1f} | "
                 f"{k('allreduce_ms'):.1f} |")
hc, mc = col("2x2", "hier", "comm_ms"), col("2x2", "mpi", "comm_ms")
hs, ms = col("2x2", "hier", "step_ms"), col("2x2", "mpi", "step_ms")
rc = [a / b for a, b in zip(hc, mc)]
rs = [a / b for a, b in zip(hs, ms)]
lines.append("")
lines.append(f"hier/mpi per round: comm {med(rc):.2f} [{min(rc):.2f}-{max(rc):.2f}], "
             f"step {med(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}] ({len(rc)} rounds; target comm <= 0.7)")
xc, xs = col("2x2", "mpi:exchange", "comm_ms"), col("2x2", "mpi:exchange", "step_ms")
rxc = [a / b for a, b in zip(hc, xc)]
rxs = [a / b for a, b in zip(hs, xs)]
if rxc:
    lines.append(f"hier/(mpi with the fp32 exchange) per round: comm {med(rxc):.2f} [{min(rxc):.2f}-{max(rxc):.2f}], "
                 f"step {med(rxs):.2f} [{min(rxs):.2f}-{max(rxs):.2f}]")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
}

if ((summary_only)); then
  [[ -n $out && -s $out/scale.csv ]] || { echo "hier-bench.sh: --summary-only needs --out DIR with a scale.csv" >&2; exit 2; }
  summarize
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "hier-bench.sh: run as root (tools/local-cluster.sh)" >&2; exit 1; }
[[ -x $bin/ompml-scale ]] || { echo "hier-bench.sh: no $bin/ompml-scale (cmake --build --preset host)" >&2; exit 1; }
: "${out:=$root/runs/hier-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out=$(cd "$out" && pwd)

export OMPML_LC_DIR=${OMPML_LC_DIR:-/tmp/ompml-lc-hb-$(id -u)} OMPML_LC_PREFIX=${OMPML_LC_PREFIX:-ompml-lch}
lc=$root/tools/local-cluster.sh
trap '"$lc" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$lc" up 2 2>"$out/up.log"
"$lc" shape "$([[ $rate == none ]] && echo off || echo "$rate")" 2>/dev/null
{
  echo "# $(date -u +%FT%TZ) $(uname -r); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# Open MPI $(ompi_info --parsable 2>/dev/null | sed -n 's/^ompi:version:full://p'); git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'); link rate $rate"
  echo "# ompml-scale --layers $layers --batch $batch (per rank) --steps $steps --warmup $warmup, 1 thread per rank"
} >"$out/machine.txt"

header=1
# point CASE TRANSPORT[:FP32SUM] SRUN-ARGS...: one ompml-scale run, its row into scale.csv
point() {
  local name=$1 asked=$2 transport=${2%%:*} fp32=auto
  [[ $2 == *:* ]] && fp32=${2#*:}
  shift 2
  local log=$out/$name-$transport-$fp32-r$round.log
  echo "== round $round: $name, --grad-transport $transport --mpi-fp32-sum $fp32: srun $*"
  # more ranks than cores: waiting ranks must yield (see tools/local-cluster.sh)
  "$lc" exec srun --mpi=pmix --export=ALL,OMP_NUM_THREADS=1,OMPI_MCA_mpi_yield_when_idle=1 "$@" \
    "$bin/ompml-scale" --layers "$layers" --batch "$batch" --steps "$steps" --warmup "$warmup" \
    --grad-transport "$transport" --mpi-fp32-sum "$fp32" --csv --header >"$log.csv" 2>"$log" ||
    { cat "$log" >&2; exit 1; }
  if ((header)); then echo "round,case,transport_asked,$(head -n 1 "$log.csv")" >"$out/scale.csv"; header=0; fi
  sed -n 2p "$log.csv" | sed "s/^/$round,$name,$asked,/" >>"$out/scale.csv"
  sed -n 2p "$log.csv"
}

for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then order="hier mpi mpi:exchange"; else order="mpi:exchange mpi hier"; fi
  for t in $order; do point 2x2 "$t" -N 2 --ntasks-per-node=2; done
  point 1x2 shm -N 1 -n 2 -w node1
  point 1x1 auto -N 1 -n 1 -w node1
done

summarize
echo "hier-bench.sh: results in $out (scale.csv, summary.md)"
