#!/bin/bash
# Every integer flag of every driver rejects what is not an integer in its range: a negative
# value, 2^64 (one past uint64) and trailing junk each end the program with a non-zero status
# and ONE line on stderr that names the flag and the value. The flags are read from each
# driver's --help (CLI11 marks them INT or UINT), so a flag added later is checked too; a
# minimum list guards against a help format this script no longer reads.
# Then the edges that must still work: the largest uint64 seed, "+7", and "010" read as decimal
# ten (CLI11 alone reads it as octal 8), shown in ompml-train's report; and ompml-data synth's
# limits with one-line errors.
#   check_int_flags.sh BIN_DIR WORKDIR
set -eu
bin=$(cd "$1" && pwd) work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

# int_flags PROGRAM [SUBCOMMAND]: the flags --help marks INT or UINT.
int_flags() {
  "$@" --help | sed -n 's/^ *\(-[a-zA-Z],\)\{0,1\}\(--[a-z0-9-]*\)\(,--[a-z0-9-]*\)* U\{0,1\}INT\b.*/\2/p'
}

# expect_reject "BASE ARGS" FLAG VALUE PROGRAM...: PROGRAM BASE ARGS FLAG VALUE must fail with
# one stderr line naming FLAG and VALUE.
expect_reject() {
  local base=$1 flag=$2 value=$3; shift 3
  local rc=0
  # shellcheck disable=SC2086 # base holds several words on purpose
  "$@" $base "$flag" "$value" >out.log 2>err.log || rc=$?
  [ $rc -ne 0 ] || fail "accepted: $* $base $flag $value"
  [ "$(wc -l <err.log)" -eq 1 ] || { cat err.log; fail "not one line: $* $flag $value"; }
  grep -qF -- "$flag" err.log || { cat err.log; fail "flag not named: $* $flag $value"; }
  grep -qF -- "$value" err.log || { cat err.log; fail "value not named: $* $flag $value"; }
}

# check_driver "MINIMUM FLAGS" "BASE ARGS" PROGRAM...: every integer flag, three bad values.
# BASE ARGS must not hold the flags under test (they give the required flags).
check_driver() {
  local minimum=$1 base=$2; shift 2
  local flags
  flags=$(int_flags "$@")
  for f in $minimum; do
    grep -qx -- "$f" <<<"$flags" || fail "$* --help: no integer flag $f (found: $(echo $flags))"
  done
  local n=0
  for f in $flags; do
    local b
    b=$(sed "s/\(^\| \)$f [^ ]*//" <<<"$base") # the base without the flag under test
    for v in -1 18446744073709551616 7x; do expect_reject "$b" "$f" "$v" "$@"; done
    n=$((n + 1))
  done
  echo "$*: $n integer flags reject -1, 2^64 and 7x: $(echo $flags)"
}

check_driver "--epochs --batch --eval-batch --warmup --step-size --step-epochs --seed --max-steps --checkpoint-every" \
  "--data missing.h5" "$bin/ompml-train"
check_driver "--batch" "--checkpoint missing.h5" "$bin/ompml-eval"
check_driver "--batch --steps --warmup-steps --seed" "" "$bin/ompml-scale"
check_driver "--m --n --k --len --warmup-runs --reps" "--kernel fill --len 1000 --reps 1 --warmup-runs 0" "$bin/ompml-bench"
check_driver "--train --test --features --classes --seed --modes" \
  "--train 10 --test 10 --features 4 --classes 2 --seed 1 -o x.h5" "$bin/ompml-data" synth
[ ! -e x.h5 ] || fail "a rejected synth wrote x.h5"

# The exact message of the issue's example.
"$bin/ompml-train" --seed -1 --data missing.h5 2>err.log && fail "--seed -1 accepted"
[ "$(cat err.log)" = "ompml-train: error: --seed: value '-1' is not an integer in [0, 18446744073709551615]" ] ||
  fail "--seed -1: $(cat err.log)"

# Values that are integers in range still work, read as decimal.
"$bin/ompml-data" synth --train 64 --test 16 --features 4 --classes 2 --seed 1 -o d.h5 >/dev/null
seed_of() { "$bin/ompml-train" --data d.h5 --layers 4,8,2 --batch 16 --max-steps 1 --seed "$1" | sed -n 's/.*\bseed \([0-9]*\),.*/\1/p'; }
[ "$(seed_of 18446744073709551615)" = 18446744073709551615 ] || fail "the largest seed was not kept"
[ "$(seed_of +7)" = 7 ] || fail "--seed +7 is not 7"
[ "$(seed_of 010)" = 10 ] || fail "--seed 010 is not decimal 10 (octal?)"

# ompml-data synth: limits with one line naming the flag and the value (no 309-digit range).
expect_synth_error() {
  local want=$1; shift
  local rc=0
  "$bin/ompml-data" synth "$@" -o y.h5 >out.log 2>err.log || rc=$?
  [ $rc -ne 0 ] || fail "synth accepted: $*"
  [ "$(wc -l <err.log)" -eq 1 ] || { cat err.log; fail "synth: not one line: $*"; }
  [ "$(cat err.log)" = "ompml-data: error: $want" ] || fail "synth $*: got '$(cat err.log)', want '$want'"
  [ ! -e y.h5 ] || fail "a failed synth left y.h5"
}
expect_synth_error "--features: value 0 must be > 0" --train 9 --test 9 --features 0 --classes 2 --seed 1
expect_synth_error "--classes: value 0 must be > 0" --train 9 --test 9 --features 4 --classes 0 --seed 1
expect_synth_error "--test: value 0 must be > 0" --train 9 --test 0 --features 4 --classes 2 --seed 1
expect_synth_error "--classes: value 16777217 must be <= 16777216" --train 9 --test 9 --features 4 --classes 16777217 --seed 1
expect_synth_error "synth: --features 2147483648 must be <= 2147483647" --train 9 --test 9 --features 2147483648 --classes 2 --seed 1
expect_synth_error "synth: --classes 1000 x --modes 100000 x --features 100000 cluster centre values exceed 1073741824 (4 bytes each, held in memory)" \
  --train 9 --test 9 --features 100000 --classes 1000 --modes 100000 --seed 1
expect_synth_error "synth: --train 18446744073709551615 x --features 2 images do not fit a 64-bit byte count" \
  --train 18446744073709551615 --test 9 --features 2 --classes 2 --seed 1
echo "integer flags: all checks passed"
