#!/bin/bash
# trace_overhead.sh: what --trace costs. Trains the quick-start model (784-512-256-10 relu,
# batch 128, Adam) on Fashion-MNIST with and without --trace, alternating within each round so
# both see the same machine state, and prints one CSV row per run and the medians:
#   off  ompml-train without --trace
#   on   ompml-train --trace (every step recorded)
#   base (with --base BIN) another ompml-train without --trace, e.g. a build from before tracing
#        existed: off / base says what tracing costs when it is off.
# samples/s is training only (evaluation excluded), from the run's --metrics JSONL, averaged
# over its epochs.
#
#   tools/trace_overhead.sh [--rounds 5] [--epochs 2] [--bin build/host/bin] [--base OTHER/bin]
#                           [--data data/fashion-mnist.h5] [--out DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=5 epochs=2 bin=$root/build/host/bin base="" data=$root/data/fashion-mnist.h5 out=""
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "trace_overhead.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -r $data ]] || { echo "trace_overhead.sh: $data not found (tools/quickstart.sh makes it)" >&2; exit 1; }
[[ -n $out ]] || out=$(mktemp -d)
mkdir -p "$out"
variants="off on"
[[ -n $base ]] && variants="base off on"

# run VARIANT ROUND: one training run; prints its mean samples/s.
run() {
  local prog=$bin/ompml-train extra=()
  [[ $1 == base ]] && prog=$base/ompml-train
  [[ $1 == on ]] && extra=(--trace "$out/trace.json")
  rm -f "$out/m.jsonl"
  "$prog" --data "$data" --epochs "$epochs" --seed 1 --metrics "$out/m.jsonl" "${extra[@]}" >"$out/$1-$2.log" 2>&1 ||
    { cat "$out/$1-$2.log" >&2; exit 1; }
  /usr/bin/python3 -c 'import json,sys; r=[x["samples_per_s"] for x in map(json.loads, open(sys.argv[1])) if x["record"] == "epoch"]; print(f"{sum(r)/len(r):.1f}")' "$out/m.jsonl"
}

echo "# $(date -Is) $(hostname), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
echo "round,variant,samples_per_s"
read -r -a order <<<"$variants"
for ((i = 1; i <= rounds; ++i)); do
  # Rotate the order each round, so no variant always runs first (after an idle pause) or last.
  k=$(( (i - 1) % ${#order[@]} ))
  for v in "${order[@]:k}" "${order[@]:0:k}"; do
    echo "$i,$v,$(run "$v" "$i")" | tee -a "$out/runs.csv"
  done
done
/usr/bin/python3 - "$out/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
med = {v: statistics.median(float(r[2]) for r in rows if r[1] == v) for v in {r[1] for r in rows}}
by_round = {(r[0], r[1]): float(r[2]) for r in rows}
rounds = sorted({r[0] for r in rows}, key=int)
for v, m in sorted(med.items()):
    print(f"# median {v}: {m:.0f} samples/s")
# Paired within each round (the same machine state), then the median and range over rounds.
def ratio(a, b, what):
    q = sorted(by_round[(i, a)] / by_round[(i, b)] for i in rounds)
    print(f"# {a} / {b}: median {statistics.median(q):.4f} (rounds {q[0]:.4f}..{q[-1]:.4f}){what}")
ratio("on", "off", ": what recording every step costs")
if "base" in med:
    ratio("off", "base", ": what tracing costs when off")
PY
echo "# the last trace: $out/trace.json"
