#!/bin/bash
# A validation split and the best checkpoint, end to end:
#   - --val-fraction 0.5 holds 50 of 100 training samples out: the run trains on 50 (5 steps of 10
#     an epoch), evaluates the 50 each epoch (val_loss in the epoch lines and records), and the
#     test split once, at the end (the final line and the end record); so small a training set
#     over a wide layer overfits, so the validation loss rises in some epochs;
#   - --keep-best keeps FILE.best.h5, the checkpoint of the epoch with the lowest validation loss,
#     which ompml-eval --split val evaluates (the same held-out rows) to that loss; a run stopped
#     after 2 epochs and resumed to 4 ends with the same checkpoints as the uninterrupted run
#     (the best so far travels in the checkpoint);
#   - tools/plot_metrics.py draws two runs' logs into a PNG;
#   - a /val split in the dataset is used instead, and named; --val-fraction beside it, --keep-best
#     without a validation split or without --checkpoint, and a fraction that leaves nothing to
#     train are one-line errors.
#   check_validation.sh OMPML_TRAIN OMPML_EVAL OMPML_DATA WORKDIR TESTS_SRCDIR
set -eu
train=$1 eval=$2 data=$3 work=$4 src=$5
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$data" synth --train 100 --test 300 --features 24 --classes 5 --modes 4 --seed 4 -o t.h5 >/dev/null
"$data" synth --train 1500 --test 300 --features 24 --classes 5 --seed 4 -o d.h5 >/dev/null
common=(--data t.h5 --layers 24,512,5 --batch 10 --optimizer adam --lr 1e-2 --seed 2 --val-fraction 0.5)

"$train" "${common[@]}" --epochs 6 --checkpoint v.h5 --keep-best --metrics v.jsonl >v.log
cat v.log
grep -q '^  data      t.h5: train 50, val 50 (--val-fraction 0.5 of /train), test 300,' v.log || fail "data line"
grep -q '^epoch 1/6 step 5 train_loss [0-9.]* val_loss [0-9.]* val_acc ' v.log || fail "epoch line"
grep -q '^final: test_acc [0-9.]* test_loss [0-9.]* val_acc [0-9.]* val_loss [0-9.]* epochs 6 ' v.log || fail "final line"
best_line=$(grep '^best: v.best.h5 (epoch [1-6], val_loss [0-9.]*)$' v.log) || fail "no best line"
$py "$src/check_checkpoint_h5py.py" schema v.best.h5
$py - <<'PY' || fail "records or the best checkpoint"
import json, h5py
recs = list(map(json.loads, open("v.jsonl")))
epochs = [r for r in recs if r["record"] == "epoch"]
assert len(epochs) == 6 and all("val_loss" in r and "test_loss" not in r for r in epochs), epochs
end = recs[-1]
assert end["record"] == "end" and end["test_loss"] > 0 and end["val_loss"] == epochs[-1]["val_loss"], end
best = min(epochs, key=lambda r: r["val_loss"])
assert end["best_val_loss"] == best["val_loss"], (end, best)
with h5py.File("v.best.h5", "r") as f:
    assert int(f["state"].attrs["epoch"]) == best["epoch"], (int(f["state"].attrs["epoch"]), best)
    assert float(f["state"].attrs["best_val_loss"]) == best["val_loss"]
    assert float(f["config"].attrs["val_fraction"]) == 0.5
assert recs[0]["steps_per_epoch"] == 5, recs[0]
rises = [r["epoch"] for p, r in zip(epochs, epochs[1:]) if r["val_loss"] > p["val_loss"]]
open("best_val_loss", "w").write(f"{best['val_loss']:.4f}\n")
print("best epoch", best["epoch"], "val_loss", best["val_loss"], "; the validation loss rose in epochs", rises)
PY
"$eval" --checkpoint v.best.h5 --split val >e.log
grep -q "^samples 50 loss $(cat best_val_loss) " e.log || { cat e.log; fail "ompml-eval --split val of v.best.h5"; }
grep -q "$(cat best_val_loss))\$" <<<"$best_line" || fail "the best line's loss"
"$eval" --checkpoint v.h5 >t.log
grep -q "accuracy $(sed -n 's/^final: test_acc \([0-9.]*\).*/\1/p' v.log)" t.log || { cat t.log; fail "test accuracy"; }

# tools/plot_metrics.py draws the run (validation curves, the final test point) beside another.
"$train" "${common[@]}" --epochs 2 --metrics u.jsonl --metrics-every 2 >u.log
$py "$src/../tools/plot_metrics.py" v.jsonl u.jsonl -o curves.png --label keep-best --label short >plot.log ||
  { cat plot.log; fail "plot_metrics.py"; }
[ "$(head -c 8 curves.png | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] || fail "curves.png is not a PNG"

# Stopped after 3 epochs, resumed to 6: the same checkpoints, the best one included.
"$train" "${common[@]}" --epochs 3 --checkpoint w.h5 --keep-best >w1.log
"$train" --resume w.h5 --epochs 6 --checkpoint w.h5 --keep-best >w2.log || { cat w2.log; fail "resume"; }
grep -q 'val 50 (--val-fraction 0.5 of /train)' w2.log || fail "the resumed run has no validation split"
$py "$src/check_checkpoint_h5py.py" same v.h5 w.h5
$py "$src/check_checkpoint_h5py.py" same v.best.h5 w.best.h5

# A /val split in the file (the last 200 test rows' shape, made with h5py) is used and named.
$py - <<'PY'
import h5py
with h5py.File("d.h5", "r") as f, h5py.File("dv.h5", "w") as g:
    for s in ("train", "test"):
        f.copy(f[s], g, name=s)
    g["val/images"] = f["train/images"][:200]
    g["val/labels"] = f["train/labels"][:200]
    for k, v in f.attrs.items():
        g.attrs[k] = v
PY
"$train" --data dv.h5 --layers 24,32,5 --batch 64 --epochs 1 --checkpoint dv-ck.h5 >dv.log
grep -q '^  data      dv.h5: train 1500, val 200 (/val), test 300,' dv.log || { cat dv.log; fail "/val not used"; }
"$eval" --checkpoint dv-ck.h5 --split val | grep -q '^samples 200 ' || fail "ompml-eval --split val of /val"

expect_error() {
  local pattern=$1; shift
  if "$train" "$@" >out.log 2>err.log; then fail "accepted: $*"; fi
  [ "$(wc -l <err.log)" -eq 1 ] || { cat err.log; fail "not one line: $*"; }
  grep -qF -- "$pattern" err.log || { cat err.log; fail "'$pattern' not in the error for: $*"; }
  echo "rejected ($*): $(cat err.log)"
}
expect_error "has its own /val split" --data dv.h5 --layers 24,32,5 --val-fraction 0.1
expect_error "--keep-best needs a validation split" --data d.h5 --layers 24,32,5 --checkpoint k.h5 --keep-best
expect_error "--keep-best needs --checkpoint FILE" --data d.h5 --layers 24,32,5 --val-fraction 0.1 --keep-best
expect_error "leaves no training samples" --data d.h5 --layers 24,32,5 --val-fraction 1
expect_error "conflicts with the checkpoint's 0.5" --resume v.h5 --val-fraction 0.1
echo "check_validation: passed"
