#!/bin/sh
# ompml-train / ompml-eval end to end on a small synthetic dataset: a run with checkpoint and
# metrics, the checkpoint read by h5py, ompml-eval, stop + resume through the drivers equal to
# the uninterrupted run (bitwise, checked by h5py), resumes across precisions, and bad flags
# failing with one line that names the flag and value.
#   check_train_cli.sh OMPML_TRAIN OMPML_EVAL OMPML_DATA WORKDIR TESTS_SRCDIR
set -eu
train=$1 eval=$2 data=$3 work=$4 src=$5
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$data" synth --train 1500 --test 300 --features 24 --classes 5 --seed 4 -o d.h5 >/dev/null
common="--data d.h5 --layers 24,32,5 --batch 64 --epochs 2 --optimizer adamw --lr 1e-2 --schedule cosine --warmup 5 --clip 1"

"$train" $common --checkpoint a.h5 --metrics a.jsonl >a.log
cat a.log
grep -q '^final: test_acc ' a.log || fail "no final line"
[ "$(grep -c '"record":"epoch"' a.jsonl)" -eq 2 ] || fail "metrics: expected 2 epoch records"
$py -c "import json,sys; [json.loads(l) for l in open('a.jsonl')]" || fail "metrics not JSON"
$py "$src/check_checkpoint_h5py.py" schema a.h5

"$eval" --checkpoint a.h5 >e.log
cat e.log
grep -q 'confusion matrix' e.log || fail "ompml-eval printed no confusion matrix"
acc_train=$(sed -n 's/^final: test_acc \([0-9.]*\).*/\1/p' a.log)
grep -q "accuracy $acc_train" e.log || fail "ompml-eval accuracy differs from ompml-train's $acc_train"

# --write-config writes the settings a.h5's command line resolves to (AdamW's derived weight decay
# included) and trains nothing; --config gives back a checkpoint identical but for its wall time
# (flags on the command line win over the file). --config reaches ompml-eval too; a name in it
# that is no flag is a one-line error.
"$train" $common --checkpoint a.h5 --metrics a.jsonl --write-config run.toml >wc.log
grep -q '^ompml-train: wrote run.toml (rerun: ompml-train --config run.toml)$' wc.log || { cat wc.log; fail "--write-config"; }
! grep -q '^epoch ' wc.log || fail "--write-config trained"
head -n 1 run.toml | grep -qx '# ompml-train configuration' || fail "run.toml: no marker line"
grep -qx 'weight-decay = 0.01' run.toml || { cat run.toml; fail "run.toml: the derived weight decay"; }
"$train" --config run.toml --checkpoint rt.h5 --metrics rt.jsonl >rt.log || { cat rt.log; fail "--config run.toml"; }
$py "$src/check_checkpoint_h5py.py" identical a.h5 rt.h5
printf 'checkpoint = "a.h5"\n' >eval.toml
"$eval" --config eval.toml | grep -q "^samples 300 loss" || fail "ompml-eval --config"
printf 'lrr = 0.1\n' >bad.toml
if "$train" --config bad.toml >out.log 2>err.log; then fail "a config with an unknown name was accepted"; fi
[ "$(cat err.log)" = "ompml-train: error: --config bad.toml: 'lrr' is not a flag of ompml-train" ] || { cat err.log; fail "bad.toml"; }

# A cosine run resumed with more epochs: the schedule takes the new length (one line says so)
# instead of training the added epoch at lr 0; the lr of the resumed epoch's last step (step 72
# of 72, warmup 5, base 1e-2) is the new cosine's, not 0.
"$train" --resume a.h5 --epochs 3 --checkpoint r3.h5 --metrics r3.jsonl --metrics-every 1 >r3.log
grep -q '^ompml-train: --epochs 3: the cosine schedule now ends at step 72 instead of 48; the run resumes at step 48 with lr 0.002846 (the old schedule.s: 0)$' r3.log ||
  { cat r3.log; fail "no notice of the longer cosine schedule"; }
$py - <<'PY' || fail "lr of the resumed epoch"
import json, math
recs = list(map(json.loads, open("r3.jsonl")))
lr = lambda i: 1e-2 * 0.5 * (1 + math.cos(math.pi * (i - 5) / (72 - 5)))  # step index i, warmup 5
steps = {r["step"]: r for r in recs if r["record"] == "step"}
assert sorted(steps) == list(range(49, 73)), sorted(steps)  # the resumed epoch, step by step
for s, r in steps.items():
    assert abs(r["lr"] - lr(s - 1)) <= 1e-6 * lr(s - 1), (r, lr(s - 1))
rec = [r for r in recs if r["record"] == "epoch"][-1]
assert rec["epoch"] == 3 and abs(rec["lr"] - lr(71)) <= 1e-6 * lr(71), rec
print("resumed cosine: lr of epoch 3's first and last steps", steps[49]["lr"], steps[72]["lr"])
PY

# Stop inside epoch 1 (24 steps/epoch), resume, compare with the uninterrupted run.
"$train" $common --max-steps 30 --checkpoint-every 7 --checkpoint b.h5 >b.log
grep -q 'stopped by --max-steps' b.log || fail "no early stop"
"$train" --resume b.h5 --checkpoint c.h5 --metrics c.jsonl >c.log
cat c.log
$py "$src/check_checkpoint_h5py.py" same a.h5 c.h5

# Precision across resumes (checkpoints hold fp32 master weights whatever the precision): a bf16
# run stopped and resumed equals the uninterrupted bf16 run bitwise; a bf16 checkpoint resumes
# in fp32 and an fp32 one in bf16, each new checkpoint naming the precision that wrote it; and
# a format-1 checkpoint (before /config precision existed) resumes as fp32, equal to c.h5.
"$train" $common --precision bf16 --checkpoint h.h5 >h.log
"$train" $common --precision bf16 --max-steps 30 --checkpoint hb.h5 >hb.log
"$train" --resume hb.h5 --checkpoint hc.h5 >hc.log
grep -q 'precision bf16' hc.log || fail "the resumed bf16 run does not report bf16"
"$eval" --checkpoint h.h5 >he.log # evaluates in the checkpoint's precision, as training did
grep -q "accuracy $(sed -n 's/^final: test_acc \([0-9.]*\).*/\1/p' h.log)" he.log || fail "ompml-eval of h.h5 differs"
$py "$src/check_checkpoint_h5py.py" same h.h5 hc.h5
"$train" --resume hb.h5 --precision fp32 --checkpoint hf.h5 >hf.log
"$train" --resume b.h5 --precision bf16 --checkpoint bh.h5 >bh.log
$py - <<'PY' || fail "precision attributes or accuracy after a change of precision"
import h5py
def attr(path, key):
    v = h5py.File(path, "r")["config"].attrs[key]
    return v.decode() if isinstance(v, bytes) else str(v)
def acc(log):
    return float([l for l in open(log) if l.startswith("final: test_acc ")][0].split()[2])
want = {"a.h5": "fp32", "h.h5": "bf16", "hb.h5": "bf16", "hf.h5": "fp32", "bh.h5": "bf16"}
for path, p in want.items():
    assert attr(path, "precision") == p, (path, attr(path, "precision"), p)
# Resumed in the other precision, the run ends as accurate as the uninterrupted ones (+-0.03).
for log in ["hf.log", "bh.log"]:
    assert abs(acc(log) - acc("a.log")) <= 0.03, (log, acc(log), acc("a.log"))
with h5py.File("b.h5", "r") as f, h5py.File("v1.h5", "w", userblock_size=512) as g:
    for k in f: f.copy(f[k], g, name=k)
    for k, v in f.attrs.items(): g.attrs[k] = v
    for k, v in f["config"].attrs.items():
        if k != "precision": g["config"].attrs[k] = v
    g["config"].attrs["version"] = 1
print("precision attributes ok; accuracy after a change of precision:", acc("hf.log"), acc("bh.log"), "vs", acc("a.log"))
PY
"$train" --resume v1.h5 --checkpoint v1c.h5 >v1c.log || { cat v1c.log; fail "format-1 checkpoint not resumed"; }
grep -q 'precision fp32' v1c.log || fail "a format-1 checkpoint did not resume as fp32"
$py "$src/check_checkpoint_h5py.py" same c.h5 v1c.h5

# Bad flags: non-zero exit, one line on stderr naming the flag/value, and never one of our
# source files (errors are about the user's files and flags).
expect_error() {
  pattern=$1; shift
  if "$train" "$@" >out.log 2>err.log; then fail "accepted: $*"; fi
  [ "$(wc -l <err.log)" -eq 1 ] || { cat err.log; fail "not one line: $*"; }
  grep -q -- "$pattern" err.log || { cat err.log; fail "'$pattern' not in the error for: $*"; }
  if grep -q '\.[ch]pp\b' err.log; then cat err.log; fail "the error names a source file: $*"; fi
  echo "rejected ($*): $(cat err.log)"
}
expect_error "--layers: value '24,x,5': entry 'x' is not a positive width" --data d.h5 --layers 24,x,5
expect_error "--activation: value 'sigmoid' is not one of relu, tanh, gelu" --data d.h5 --layers 24,32,5 --activation sigmoid
expect_error "--optimizer: value 'lamb' is not one of sgd, adam, adamw" --data d.h5 --layers 24,32,5 --optimizer lamb
expect_error "--schedule: value 'linear' is not one of constant, step, cosine" --data d.h5 --layers 24,32,5 --schedule linear
expect_error "--precision: value .fp16. is not one of fp32, bf16" --data d.h5 --layers 24,32,5 --precision fp16
expect_error "--epochs: value 0 must be > 0" --data d.h5 --layers 24,32,5 --epochs 0
expect_error "--lr: value .abc. is not a number" --data d.h5 --layers 24,32,5 --lr abc
expect_error "--bogus" --data d.h5 --bogus 3
expect_error "(--lrr: did you mean --lr?)" --data d.h5 --lrr 0.1
expect_error "(--checkpoint-evry: did you mean --checkpoint-every?)" --data d.h5 --checkpoint-evry 5
expect_error "unknown backend 'foo'" --data d.h5 --layers 24,32,5 --backend foo
expect_error "missing.h5" --data missing.h5
expect_error "5 classes" --data d.h5 --layers 24,32,7
expect_error "features" --data d.h5 --layers 20,32,5
expect_error "--checkpoint-every" --data d.h5 --layers 24,32,5 --checkpoint-every 5
expect_error "--lr 0.5 conflicts" --resume b.h5 --lr 0.5
expect_error "--schedule step needs" --data d.h5 --layers 24,32,5 --schedule step
# --checkpoint never destroys a user's file: the dataset itself, a text file, a directory.
cp d.h5 d.copy && printf 'my notes\n' >notes.txt && mkdir -p ckdir && printf 'keep\n' >ckdir/inside
short="--data d.h5 --layers 24,32,5 --batch 64 --epochs 1 --max-steps 3"
expect_error "--checkpoint d.h5 is a dataset file" $short --checkpoint d.h5
expect_error "--checkpoint notes.txt is not an ompml checkpoint" $short --checkpoint notes.txt
expect_error "--checkpoint ckdir is a directory" $short --checkpoint ckdir
cmp d.h5 d.copy || fail "the dataset changed"
# Host cores flush subnormal floats unless OMPML_SUBNORMALS=keep; the first line says which.
"$train" $short --checkpoint sub.h5 >sub.log || { cat sub.log; fail "a short run failed"; }
grep -q '^ompml-train: backend .*, subnormals flushed to zero (FTZ, DAZ)$' sub.log || { cat sub.log; fail "no flush mode"; }
OMPML_SUBNORMALS=keep "$train" $short --checkpoint sub.h5 >sub.log || { cat sub.log; fail "keep failed"; }
grep -q '^ompml-train: backend .*, subnormals kept (IEEE)$' sub.log || { cat sub.log; fail "no keep mode"; }
(
  export OMPML_SUBNORMALS=fast
  expect_error "OMPML_SUBNORMALS='fast': unknown mode (known: flush, keep)" $short
) || exit 1
[ "$(cat notes.txt)" = "my notes" ] && [ "$(cat ckdir/inside)" = keep ] || fail "a user file changed"
[ ! -e d.h5.prev ] && [ ! -e notes.txt.prev ] && [ ! -e ckdir.prev ] || fail "something was rotated: $(ls)"

# NaN in a float32 dataset: refused naming the file, split, row and column.
"$data" synth --train 300 --test 50 --features 24 --classes 5 --seed 4 --dtype float32 -o f.h5 >/dev/null
$py -c "import h5py; f = h5py.File('f.h5', 'r+'); f['train/images'][7, 5] = float('nan')"
expect_error "f.h5: /train/images: row 7, column 5 is nan" --data f.h5 --layers 24,32,5 --epochs 1
expect_error "f.h5: /train/images: row 7, column 5 is nan" --data f.h5 --layers 24,32,5 --epochs 1 --streaming
echo "ompml-train / ompml-eval: all checks passed"
