#!/bin/bash
# The CPU anchors say which OpenBLAS kernels they ran: ompml-bench (table and CSV) and
# tools/torch_speed.py print OpenBLAS's core and threads, and warn on stderr exactly when
# OPENBLAS_CORETYPE forces a core below what this CPU supports. Forced here to Haswell (AVX2):
# a warning is expected iff the CPU has AVX-512 (/proc/cpuinfo, an independent source from
# the programs' __builtin_cpu_supports and their own /proc/cpuinfo reading). Not timings.
#   check_openblas_core.sh BIN_DIR WORKDIR SOURCE_DIR
set -eu
bin=$(cd "$1" && pwd) work=$2 src=$(cd "$3" && pwd)
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
if grep -qw avx512f /proc/cpuinfo; then avx512=1; else avx512=0; fi
echo "this CPU has AVX-512: $avx512"

# expect_warning FILE WANTED(0|1) WHAT: a "warning: OPENBLAS_CORETYPE=" line in FILE iff WANTED.
expect_warning() {
  local n
  n=$(grep -c "warning: OPENBLAS_CORETYPE=Haswell makes OpenBLAS run its Haswell kernels (AVX2) on a CPU with AVX-512" "$1" || true)
  [ "$n" -eq "$2" ] || { cat "$1"; fail "$3: $n warning line(s), expected $2"; }
}

# --- ompml-bench -------------------------------------------------------------------------------
small="--kernel gemm --m 8 --n 8 --k 8 --reps 1 --warmup-runs 0"
# shellcheck disable=SC2086
OPENBLAS_CORETYPE=Haswell "$bin/ompml-bench" $small --csv >csv.out 2>csv.err
if ! grep -q '^gemm,openblas,' csv.out; then
  echo "ompml-bench was built without OpenBLAS: bench checks skipped"
else
  grep -q '^# openblas: core=Haswell core_isa=AVX2 cpu_isa=[^ ]* threads=[0-9]* OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=[^ ]* config=OpenBLAS ' csv.out ||
    { cat csv.out; fail "bench CSV: no '# openblas:' line naming core Haswell"; }
  grep -q '^# device: .*openblas = host (OpenBLAS cblas_sgemm, core Haswell, [0-9]* threads)' csv.out ||
    { cat csv.out; fail "bench CSV: the openblas device does not name its core"; }
  # Still machine-readable: comment lines aside, every row has the header's columns.
  $py - csv.out <<'EOF' || fail "bench CSV does not parse"
import csv, sys
rows = list(csv.reader(l for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")))
assert len(rows) >= 3 and all(len(r) == len(rows[0]) for r in rows), rows
EOF
  expect_warning csv.err $avx512 "ompml-bench, OPENBLAS_CORETYPE=Haswell"
  # shellcheck disable=SC2086
  env -u OPENBLAS_CORETYPE "$bin/ompml-bench" $small >table.out 2>table.err
  grep -q '^openblas core=[A-Za-z0-9_]* .*OPENBLAS_CORETYPE=unset ' table.out || { cat table.out; fail "bench table: no openblas line"; }
  expect_warning table.err 0 "ompml-bench without OPENBLAS_CORETYPE"
  OPENBLAS_CORETYPE=Haswell "$bin/ompml-bench" --kernel fill --len 100 --reps 1 --warmup-runs 0 --csv >fill.out 2>fill.err
  ! grep -q openblas fill.out || fail "bench: an openblas line without the gemm anchor"
  expect_warning fill.err 0 "ompml-bench without gemm"
fi

# --- tools/torch_speed.py ------------------------------------------------------------------------
OPENBLAS_CORETYPE=Haswell $py "$src/tools/torch_speed.py" --blas-only --threads 1 >t.out 2>t.err
grep -q '^torch BLAS: BLAS_INFO=' t.out || { cat t.out; fail "torch_speed.py: no torch BLAS line"; }
grep -q '^  loaded BLAS: /' t.out || { cat t.out; fail "torch_speed.py: no loaded BLAS path"; }
if grep -q 'not OpenBLAS' t.out; then
  echo "torch runs a BLAS other than OpenBLAS here: core checks skipped"
else
  grep -q '^  openblas: core Haswell (AVX2; CPU [^)]*), 1 threads, OPENBLAS_CORETYPE=Haswell' t.out ||
    { cat t.out; fail "torch_speed.py: no OpenBLAS core line at 1 thread"; }
  expect_warning t.err $avx512 "torch_speed.py, OPENBLAS_CORETYPE=Haswell"
fi
env -u OPENBLAS_CORETYPE $py "$src/tools/torch_speed.py" --blas-only >u.out 2>u.err
expect_warning u.err 0 "torch_speed.py without OPENBLAS_CORETYPE"

# The whole comparison on a small dataset of the model's shape: it runs and still says its BLAS.
"$bin/ompml-data" synth --train 256 --test 64 --features 784 --classes 10 --seed 1 -o d.h5 >/dev/null
$py "$src/tools/torch_speed.py" --ompml-train "$bin/ompml-train" --data d.h5 --threads 1 >run.out 2>run.err ||
  { cat run.out run.err; fail "torch_speed.py failed"; }
grep -q '^  ratio ompml / pytorch : [0-9.]*$' run.out || { cat run.out; fail "torch_speed.py: no ratio"; }
grep -q '^torch BLAS: ' run.out || { cat run.out; fail "torch_speed.py: the run does not say its BLAS"; }
echo "openblas core reports: all checks passed"
