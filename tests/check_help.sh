#!/bin/bash
# What every program's command line has in common (app/cli.hpp): --version names the build
# (version, git commit, preset, flags), --help shows defaults and the backends this build has, a
# misspelt flag gets "did you mean", and the renamed --warmup of ompml-bench (--warmup-runs) and
# ompml-scale (--warmup-steps) still works for a release, with a note. Also the start-up report
# of ompml-train shows only the settings that apply.
#   check_help.sh BIN_DIR WORKDIR
set -eu
bin=$(cd "$1" && pwd) work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

for p in train eval data bench scale predict; do
  "$bin/ompml-$p" --version >v.txt || fail "ompml-$p --version: exit $?"
  grep -qE "^ompml-$p [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{12}(-dirty)?|unknown), preset [a-z.-]+" v.txt ||
    { cat v.txt; fail "ompml-$p --version"; }
  grep -q '^flags: .*-fopenmp' v.txt || { cat v.txt; fail "ompml-$p --version: no flags line"; }
  "$bin/ompml-$p" --help >h.txt || fail "ompml-$p --help"
  grep -q -- '--config' h.txt || fail "ompml-$p --help: no --config"
  if grep -q -- '--backend' h.txt; then
    grep -A1 -- '--backend' h.txt | grep -q 'omp' || { cat h.txt; fail "ompml-$p --help: --backend lists no backends"; }
  fi
done
echo "every program: --version, --config, --backend's choices"

"$bin/ompml-bench" --help >h.txt
for d in '--m INT:in \[1, 1073741824\]=1024' '--reps INT:in \[1, 1000000\]=10' '--kernel TEXT=all' \
         '--warmup-runs,--warmup INT:in \[0, 1000000\]=2'; do
  grep -q -- "$d" h.txt || { cat h.txt; fail "ompml-bench --help: no '$d'"; }
done
"$bin/ompml-scale" --help | grep -q -- '--warmup-steps,--warmup' || fail "ompml-scale --help: --warmup-steps"
"$bin/ompml-bench" --kernel fill --len 100 --reps 1 --warmup 0 --csv >b.out 2>b.err || { cat b.err; fail "bench --warmup"; }
grep -qx 'ompml-bench: note: --warmup is now --warmup-runs; the old name goes in the next release' b.err ||
  { cat b.err; fail "no note for bench --warmup"; }
"$bin/ompml-bench" --kernel fill --len 100 --reps 1 --warmup-runs 0 --csv >b.out 2>b.err
[ ! -s b.err ] || { cat b.err; fail "a note for --warmup-runs"; }
echo "ompml-bench: defaults in --help; --warmup-runs, and --warmup with a note"

expect_usage() { # PATTERN PROGRAM ARGS...: exit 2, one line
  local pattern=$1; shift
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <err.txt)" -eq 1 ] && grep -qF -- "$pattern" err.txt ||
    { cat err.txt; fail "$*: exit $rc, expected 2 and one line with '$pattern'"; }
  echo "usage error: $(cat err.txt)"
}
expect_usage "(--ephocs: did you mean --epochs?)" "$bin/ompml-train" --ephocs 3
expect_usage "(--checkpont: did you mean --checkpoint?)" "$bin/ompml-eval" --checkpont a.h5
expect_usage "(--kernal: did you mean --kernel?)" "$bin/ompml-bench" --kernal gemm
expect_usage "(--classs: did you mean --classes?)" "$bin/ompml-data" synth --train 8 --test 4 --features 4 \
  --classs 2 --seed 1 -o x.h5
expect_usage "(--stpes: did you mean --steps?)" "$bin/ompml-scale" --stpes 3
expect_usage "(--outptu: did you mean --output?)" "$bin/ompml-predict" --checkpoint a.h5 --outptu p.h5

# The report shows what applies: Adam has no momentum, a constant schedule no step size, one
# rank sums no gradients; SGD shows its momentum, the step schedule its step size and gamma.
"$bin/ompml-data" synth --train 64 --test 16 --features 4 --classes 2 --seed 1 -o d.h5 >/dev/null
"$bin/ompml-train" --data d.h5 --layers 4,8,2 --batch 16 --max-steps 1 >adam.log
grep -q '^  mpi       1 rank on 1 node, gradients: none (1 rank)$' adam.log || { cat adam.log; fail "1 rank"; }
grep -q '^  optimizer adam, lr 0.001, beta1 0.9, beta2 0.999, eps 1e-08, weight_decay 0, clip 0$' adam.log ||
  { cat adam.log; fail "adam's report"; }
grep -q '^  schedule  constant, warmup 0$' adam.log || { cat adam.log; fail "constant schedule's report"; }
! grep -q '^  gradients' adam.log || fail "one rank reports how it sums gradients"
"$bin/ompml-train" --data d.h5 --layers 4,8,2 --batch 16 --max-steps 1 --optimizer sgd --schedule step \
  --step-size 3 >sgd.log
grep -q '^  optimizer sgd, lr 0.001, momentum 0.9, weight_decay 0, clip 0$' sgd.log || { cat sgd.log; fail "sgd"; }
grep -q '^  schedule  step, warmup 0, step_size 3, gamma 0.1$' sgd.log || { cat sgd.log; fail "step schedule"; }
"$bin/ompml-train" --data d.h5 --layers 4,8,2 --batch 16 --max-steps 1 --schedule cosine >cos.log
grep -q '^  schedule  cosine, warmup 0, total_steps 40$' cos.log || { cat cos.log; fail "cosine schedule"; }
echo "check_help: passed"
