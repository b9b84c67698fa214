#!/bin/bash
# Runs a command (an mpirun of tests/mpi/fault_helper) that must FAIL, and fast: passes only if
#   - it exits non-zero,
#   - it was not stopped by the 60 s safety timeout (a hang fails the test, it does not hang it),
#   - it ended within MAX_SECONDS,
#   - its output contains PATTERN (the failing rank's message reached the user).
# usage: expect_fast_failure.sh MAX_SECONDS PATTERN command [args...]
#        PATTERN "-" skips the output check.
set -u
max_s=$1
pattern=$2
shift 2

start=$(date +%s%N)
out=$(timeout -k 5 60 "$@" 2>&1)
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$out"
echo "--- exit status $rc after ${elapsed_ms} ms"

fail() {
    echo "FAIL: $*"
    exit 1
}
[ "$rc" -ne 0 ] || fail "the command exited 0; it should have failed"
# 124: timeout stopped it. 137 alone is no proof of a hang: mpirun itself returns 128+9 when a
# rank was killed by SIGKILL, so the elapsed time decides.
if [ "$rc" -eq 124 ] || [ "$elapsed_ms" -ge 60000 ]; then
    fail "the command hung and was stopped by the 60 s timeout"
fi
[ "$elapsed_ms" -lt $((max_s * 1000)) ] || fail "the command took ${elapsed_ms} ms; the bound is ${max_s} s"
if [ "$pattern" != "-" ]; then
    grep -qF -- "$pattern" <<<"$out" || fail "the output lacks '$pattern'"
fi
echo "PASS: failed with status $rc in ${elapsed_ms} ms"
