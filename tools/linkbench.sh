#!/usr/bin/env bash
# linkbench.sh: the links of the local cluster (tools/local-cluster.sh), measured: message time
# against size for a bandwidth-latency fit t(n) = alpha + n / beta, between two nodes (TCP over
# veth and a bridge, shaped by tc tbf at each --rates entry) and inside one node (Open MPI's
# shared memory), plus MPI_Allreduce over 2 nodes x 1 and x 2 ranks. Builds
# tools/mpi_pingpong.cpp with mpicxx, brings up its own 2-node cluster (state dir and namespace
# names of its own) and takes it down on every exit path. Run as root, on an otherwise idle
# machine: the nodes share its cores.
#
#   tools/linkbench.sh                                  # rates: none (unshaped) 10gbit 1gbit
#   tools/linkbench.sh --rates "none 1gbit" --seconds 1 --max 16777216 --out runs/lb
#
# Output in --out (default runs/linkbench-<date>): raw.csv (every row of every case: case,
# rate, then mpi_pingpong's columns), fit.csv and fit.md (alpha in us, beta in GB/s of one
# message, from the ping-pong medians: see the fit below), and the logs.
# Cases: intra (2 ranks on node1), inter (1 rank on node1 and node2), 2x2 (2 ranks on each:
# the allreduce rows; its ping-pong pair shares a node).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rates="none 10gbit 1gbit"
seconds=0.5
max=$((64 << 20))
out=""
while (($#)); do
  case $1 in
    --rates) rates=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max) max=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "linkbench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "linkbench.sh: run as root (tools/local-cluster.sh)" >&2; exit 1; }
command -v mpicxx >/dev/null || { echo "linkbench.sh: mpicxx not found (libopenmpi-dev)" >&2; exit 1; }
: "${out:=$root/runs/linkbench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out=$(cd "$out" && pwd)

export OMPML_LC_DIR=${OMPML_LC_DIR:-/tmp/ompml-lc-bench-$(id -u)} OMPML_LC_PREFIX=${OMPML_LC_PREFIX:-ompml-lcb}
lc=$root/tools/local-cluster.sh
trap '"$lc" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mpicxx -O2 -std=c++17 -o "$out/mpi_pingpong" "$root/tools/mpi_pingpong.cpp"
"$lc" up 2 2>"$out/up.log"
{
  echo "# $(date -u +%FT%TZ) $(uname -r); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "# Open MPI $(ompi_info --parsable 2>/dev/null | sed -n 's/^ompi:version:full://p')"
} >"$out/machine.txt"
echo "case,rate,op,ranks,bytes,reps,min_us,median_us,gbs" >"$out/raw.csv"

# run CASE RATE YIELD SRUN-ARGS...: one mpi_pingpong run, its rows into raw.csv
run() {
  local name=$1 rate=$2 yield=$3
  shift 3
  echo "== $name, rate $rate: srun $*"
  OMPI_MCA_mpi_yield_when_idle=$yield "$lc" exec srun --mpi=pmix "$@" \
    "$out/mpi_pingpong" --max "$max" --seconds "$seconds" >"$out/$name-$rate.csv" 2>"$out/$name-$rate.log" ||
    { cat "$out/$name-$rate.log" >&2; exit 1; }
  sed "s/^/$name,$rate,/" "$out/$name-$rate.csv" >>"$out/raw.csv"
  cat "$out/$name-$rate.csv"
}

# inside one node: Open MPI's shared memory (no link involved; 2 ranks on 2 cores: no yield)
run intra none 0 -N 1 -n 2 -w node1
for rate in $rates; do
  "$lc" shape "$([[ $rate == none ]] && echo off || echo "$rate")" 2>/dev/null
  run inter "$rate" 0 -N 2 --ntasks-per-node=1
  # 4 ranks on 2 cores: waiting ranks must yield (see tools/local-cluster.sh)
  run 2x2 "$rate" 1 -N 2 --ntasks-per-node=2
done

/usr/bin/python3 - "$out" <<'PY'
# The Hockney model t(n) = alpha + n / beta of one message, from the ping-pong medians: alpha is
# the smallest message's time; beta the inverse slope of a least-squares line through the
# messages of 1 MiB and more, where the per-byte cost dominates (between the two, Open MPI
# switches from eager sends to rendezvous, caches run out, and a tbf bucket lets a message
# through at the link's own speed). Reported with that line's intercept and worst relative
# residual, and the model's worst residual over all sizes (how far one line is from the curve).
import csv, sys
import numpy as np
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/raw.csv")))
fits = []
for case, rate in sorted({(r["case"], r["rate"]) for r in rows if r["op"] == "pingpong" and r["case"] != "2x2"}):
    pts = [r for r in rows if (r["case"], r["rate"], r["op"]) == (case, rate, "pingpong")]
    n = np.array([float(r["bytes"]) for r in pts])
    t = np.array([float(r["median_us"]) for r in pts]) * 1e-6
    alpha = float(t[np.argmin(n)])
    big = n >= 1 << 20
    slope, icept = np.polyfit(n[big], t[big], 1)
    line = float(np.max(np.abs(icept + slope * n[big] - t[big]) / t[big]))
    model = float(np.max(np.abs(alpha + slope * n - t) / t))
    fits.append((case, rate, alpha * 1e6, 1e-9 / slope, icept * 1e6, line, model))
with open(f"{out}/fit.csv", "w") as f:
    f.write("case,rate,alpha_us,beta_gbs,line_intercept_us,line_worst_rel,model_worst_rel\n")
    for x in fits:
        f.write("%s,%s,%.2f,%.3f,%.1f,%.3f,%.2f\n" % x)
with open(f"{out}/fit.md", "w") as f:
    f.write("| case | rate | alpha (us) | beta (GB/s) | line >= 1 MiB: intercept (us), worst residual | alpha + n/beta: worst residual, all sizes |\n")
    f.write("|---|---|---|---|---|---|\n")
    for x in fits:
        f.write("| %s | %s | %.2f | %.3f | %.0f, %.0f%% | %.0f%% |\n" % (x[0], x[1], x[2], x[3], x[4], 100 * x[5], 100 * x[6]))
print(open(f"{out}/fit.md").read())
PY
echo "linkbench.sh: results in $out (raw.csv, fit.csv, fit.md)"
