#!/bin/sh
# ompml-train / ompml-eval end to end on a small synthetic dataset: a run with checkpoint and
# metrics, the checkpoint read by h5py, ompml-eval, stop + resume through the drivers equal to
# the uninterrupted run (bitwise, checked by h5py), and bad flags failing with one line that
# names the flag and value.
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
[ "$(wc -l <a.jsonl)" -eq 2 ] || fail "metrics: expected 2 lines"
$py -c "import json,sys; [json.loads(l) for l in open('a.jsonl')]" || fail "metrics not JSON"
$py "$src/check_checkpoint_h5py.py" schema a.h5

"$eval" --checkpoint a.h5 >e.log
cat e.log
grep -q 'confusion matrix' e.log || fail "ompml-eval printed no confusion matrix"
acc_train=$(sed -n 's/^final: test_acc \([0-9.]*\).*/\1/p' a.log)
grep -q "accuracy $acc_train" e.log || fail "ompml-eval accuracy differs from ompml-train's $acc_train"

# Stop inside epoch 1 (24 steps/epoch), resume, compare with the uninterrupted run.
"$train" $common --max-steps 30 --checkpoint-every 7 --checkpoint b.h5 >b.log
grep -q 'stopped by --max-steps' b.log || fail "no early stop"
"$train" --resume b.h5 --checkpoint c.h5 --metrics c.jsonl >c.log
cat c.log
$py "$src/check_checkpoint_h5py.py" same a.h5 c.h5

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
expect_error "--epochs: value 0 must be > 0" --data d.h5 --layers 24,32,5 --epochs 0
expect_error "--lr: value .abc. is not a number" --data d.h5 --layers 24,32,5 --lr abc
expect_error "--bogus" --data d.h5 --bogus 3
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
[ "$(cat notes.txt)" = "my notes" ] && [ "$(cat ckdir/inside)" = keep ] || fail "a user file changed"
[ ! -e d.h5.prev ] && [ ! -e notes.txt.prev ] && [ ! -e ckdir.prev ] || fail "something was rotated: $(ls)"

# NaN in a float32 dataset: refused naming the file, split, row and column.
"$data" synth --train 300 --test 50 --features 24 --classes 5 --seed 4 --dtype float32 -o f.h5 >/dev/null
$py -c "import h5py; f = h5py.File('f.h5', 'r+'); f['train/images'][7, 5] = float('nan')"
expect_error "f.h5: /train/images: row 7, column 5 is nan" --data f.h5 --layers 24,32,5 --epochs 1
expect_error "f.h5: /train/images: row 7, column 5 is nan" --data f.h5 --layers 24,32,5 --epochs 1 --streaming
echo "ompml-train / ompml-eval: all checks passed"
