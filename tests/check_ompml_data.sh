#!/bin/sh
# ompml-data end to end: synth (both dtypes) -> h5py reads it correctly; inspect; the error
# format and exit codes. usage: check_ompml_data.sh OMPML_DATA WORKDIR TESTS_DIR
set -eu
exe=$1 work=$2 here=$3
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

for dtype in uint8 float32; do
  f=$work/synth_$dtype.h5
  rm -f "$f"
  "$exe" synth --train 600 --test 150 --features 12 --classes 5 --seed 11 --dtype $dtype -o "$f"
  /usr/bin/python3 "$here/check_dataset_h5py.py" "$f" 600 150 12 5 $dtype
  "$exe" inspect "$f" > "$work/inspect.txt"
  grep -q "/train: 600 samples" "$work/inspect.txt" || fail "inspect: train count"
  grep -q "label histogram: 0:" "$work/inspect.txt" || fail "inspect: histogram"
  grep -q "created_by = ompml-data synth" "$work/inspect.txt" || fail "inspect: attributes"
done

# Errors: one line, "ompml-data: error: ...", exit code 1.
set +e
"$exe" inspect "$work/missing.h5" 2> "$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "missing file: exit code $rc, expected 1"
[ "$(cat "$work/err.txt")" = "ompml-data: error: $work/missing.h5: no such file" ] || fail "message: $(cat "$work/err.txt")"
set +e
"$exe" import-idx "$work" -o "$work/x.h5" 2> "$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "import-idx of a dir without IDX files: exit code $rc"
[ "$(wc -l < "$work/err.txt")" -eq 1 ] || fail "import-idx error is not one line"
[ ! -e "$work/x.h5" ] || fail "failed import left $work/x.h5"
echo "check_ompml_data: passed"
