#!/bin/bash
# precision_study.sh: --precision fp32 against bf16 on the quick-start model (784-512-256-10
# relu, batch 128, Adam, Fashion-MNIST), in the same session: each round trains EPOCHS epochs
# in both precisions (the order alternating between rounds, so neither always runs first), and
# prints one CSV row per run and, per round, bf16's speed over fp32's:
#   round,precision,test_acc,samples_per_s,gflops
# samples/s and GFLOP/s are training only (evaluation excluded): all epochs' samples over all
# epochs' training seconds, from the run's --metrics JSONL; test_acc is the last epoch's.
#
#   tools/precision_study.sh [--rounds 2] [--epochs 10] [--bin build/host/bin]
#                            [--data data/fashion-mnist.h5] [--out DIR] [-- more ompml-train flags]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=2 epochs=10 bin=$root/build/host/bin data=$root/data/fashion-mnist.h5 out="" extra=()
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "precision_study.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -r $data ]] || { echo "precision_study.sh: $data not found (tools/quickstart.sh makes it)" >&2; exit 1; }
[[ -n $out ]] || out=$(mktemp -d)
mkdir -p "$out"

# run PRECISION ROUND: one training run; prints test_acc,samples_per_s,gflops.
run() {
  local log=$out/$1-$2
  rm -f "$log.jsonl"
  "$bin/ompml-train" --data "$data" --epochs "$epochs" --seed 1 --precision "$1" --metrics "$log.jsonl" \
    "${extra[@]}" >"$log.log" 2>&1 || { cat "$log.log" >&2; exit 1; }
  /usr/bin/python3 - "$log.jsonl" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["record"] == "epoch"]
samples = sum(r["samples_per_s"] * r["seconds"] for r in rows)
seconds = sum(r["seconds"] for r in rows)
flops = sum(r["gflops"] * r["seconds"] for r in rows)
print(f"{rows[-1]['test_acc']:.4f},{samples / seconds:.1f},{flops / seconds:.1f}")
PY
}

echo "# $(date -Is) $(hostname), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, $epochs epochs"
echo "round,precision,test_acc,samples_per_s,gflops"
for ((i = 1; i <= rounds; ++i)); do
  order=(fp32 bf16)
  ((i % 2 == 0)) && order=(bf16 fp32)
  for p in "${order[@]}"; do
    echo "$i,$p,$(run "$p" "$i")" | tee -a "$out/runs.csv"
  done
done
/usr/bin/python3 - "$out/runs.csv" <<'PY'
import csv, sys
rows = {(r[0], r[1]): r for r in csv.reader(open(sys.argv[1]))}
for i in sorted({k[0] for k in rows}, key=int):
    f, b = rows[(i, "fp32")], rows[(i, "bf16")]
    print(f"# round {i}: bf16 / fp32 speed {float(b[3]) / float(f[3]):.2f}x; test_acc fp32 {f[2]}, bf16 {b[2]}")
PY
