#!/bin/bash
# ompml-predict end to end, read back by h5py:
#   - on a dataset's test split: every row's probabilities sum to 1, the predictions are their
#     argmax, the labels are carried over, and the accuracy against them is ompml-eval's;
#   - on the same images without labels, as an HDF5 file of /images and as a gzip IDX file
#     (N, 4, 6): the same probabilities, bit for bit;
#   - -o never replaces a dataset or a text file (byte for byte unchanged) unless --force;
#     images of the wrong width are a one-line error naming both widths.
#   check_predict.sh OMPML_TRAIN OMPML_EVAL OMPML_DATA OMPML_PREDICT WORKDIR
set -eu
train=$1 eval=$2 data=$3 predict=$4 work=$5
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$data" synth --train 1500 --test 300 --features 24 --classes 5 --seed 4 -o d.h5 >/dev/null
"$train" --data d.h5 --layers 24,32,5 --batch 64 --epochs 2 --lr 1e-2 --checkpoint a.h5 >/dev/null

"$predict" --checkpoint a.h5 -o p.h5 | tee p.log
grep -q '^ompml-predict: wrote p.h5: 300 rows of 5 class probabilities from a.h5 (24,32,5 relu, step 48) on d.h5 /test/images,' p.log ||
  fail "the line"
acc=$(sed -n 's/.*, accuracy \([0-9.]*\) against its labels$/\1/p' p.log)
"$eval" --checkpoint a.h5 | grep -q "^samples 300 loss [0-9.]* accuracy $acc\$" || fail "accuracy $acc is not ompml-eval's"

$py - <<'PY' || fail "images without labels"
import gzip, h5py, numpy as np
with h5py.File("d.h5", "r") as f:
    x = f["test/images"][()]
with h5py.File("images.h5", "w") as g:
    g["images"] = x
n = len(x)
with gzip.open("images-idx3-ubyte.gz", "wb") as g:  # IDX: magic 0 0 8 rank, big-endian dims, bytes
    g.write(bytes([0, 0, 8, 3]) + np.array([n, 4, 6], ">u4").tobytes() + x.reshape(n, 4, 6).tobytes())
PY
"$predict" --checkpoint a.h5 --data images.h5 -o q.h5 | grep -q ' on images.h5 /images, backend ' || fail "/images"
"$predict" --checkpoint a.h5 --data images-idx3-ubyte.gz -o r.h5 | grep -q ' on images-idx3-ubyte.gz IDX file, ' ||
  fail "IDX"
$py - <<'PY' || fail "the predictions files"
import h5py, numpy as np
with h5py.File("p.h5", "r") as f, h5py.File("d.h5", "r") as d:
    p, pred, labels = f["probabilities"][()], f["predictions"][()], f["labels"][()]
    assert p.shape == (300, 5) and p.dtype == np.float32 and pred.shape == (300,) and pred.dtype == np.int32
    assert np.all(np.abs(p.sum(axis=1) - 1) < 1e-5), p.sum(axis=1)
    assert np.array_equal(pred, p.argmax(axis=1)), "predictions are not the argmax"
    assert np.array_equal(labels, d["test/labels"][()])
    a = f.attrs
    assert a["format"] == "ompml-predictions" and a["created_by"] == "ompml-predict" and int(a["classes"]) == 5
    assert int(a["checkpoint_step"]) == 48 and a["source"] == "/test/images", dict(a)
    assert f["provenance"].attrs["git_commit"], "no provenance"
for other in ["q.h5", "r.h5"]:
    with h5py.File(other, "r") as g:
        assert np.array_equal(g["probabilities"][()], p), other + ": probabilities differ"
        assert "labels" not in g, other
print("predictions: rows sum to 1, argmax, labels; the same bits from /images and from IDX")
PY

# Targets: a dataset and a text file are refused and unchanged; --force replaces the text file.
printf 'my notes\n' >notes.txt
cp d.h5 d.orig
for target in d.h5 notes.txt; do
  if "$predict" --checkpoint a.h5 -o $target >out.log 2>err.log; then fail "-o $target was replaced"; fi
  [ "$(wc -l <err.log)" -eq 1 ] && grep -qF -- "-o $target " err.log && grep -qF -- "--force" err.log ||
    { cat err.log; fail "-o $target: the error"; }
  echo "refused: $(cat err.log)"
done
cmp -s d.h5 d.orig && [ "$(cat notes.txt)" = "my notes" ] || fail "a refused target changed"
"$predict" --checkpoint a.h5 -o notes.txt --force >/dev/null || fail "--force"
"$predict" --checkpoint a.h5 -o p.h5 >/dev/null || fail "a predictions file was not replaced"
"$data" synth --train 10 --test 10 --features 7 --classes 5 --seed 1 -o narrow.h5 >/dev/null
if "$predict" --checkpoint a.h5 --data narrow.h5 -o n.h5 2>err.log; then fail "7 features were accepted"; fi
grep -q 'has 7 features per image, the checkpoint.s model takes 24$' err.log || { cat err.log; fail "width error"; }
echo "check_predict: passed"
