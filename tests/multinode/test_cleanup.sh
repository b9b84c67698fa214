#!/bin/bash
# tools/local-cluster.sh cleans up on every exit path: `up` stopped after each of its stages
# (network, munge, slurmctld, slurmd, wait) by TERM, INT, HUP or a failing command (its own
# traps), and by a TERM or INT from outside while it waits, takes down all it made; `up` killed
# by SIGKILL (no trap can run) leaves namespaces and daemons, which `leftovers` reports, a
# second `up` refuses to start over, and `down` removes; `down` with nothing up succeeds.
# After each case `leftovers` must find no namespace, mount or process of the cluster. Stages
# are reached through the script's test hook (OMPML_LC_STOP_AT), not timing.
source "$(dirname "$0")/lib.sh"
T_NAME=mn_cleanup
[[ $(id -u) -eq 0 ]] || t_fail "must run as root (namespaces)"
T_WORK=$(mktemp -d /tmp/ompml-mn_cleanup.XXXXXX)
cd "$T_WORK" || t_fail "cd $T_WORK"
on_exit() {
  local rc=$?
  "$LC" down >/dev/null 2>&1 || true
  ((rc == 0)) && rm -rf "$T_WORK"
  exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

clean() {  # clean WHAT: nothing of the cluster is left
  "$LC" leftovers >leftovers.txt 2>&1 || { cat leftovers.txt; t_fail "$1: something was left"; }
}

"$LC" down >/dev/null 2>&1 || t_fail "down with nothing up failed"
clean "down with nothing up"

# 1. up's own traps: each stage, each way of stopping it
cases=(network:TERM munge:INT slurmctld:ERR slurmd:HUP wait:TERM)
for c in "${cases[@]}"; do
  stage=${c%%:*} sig=${c#*:}
  if OMPML_LC_STOP_AT=$stage OMPML_LC_STOP_SIGNAL=$sig "$LC" up 2 >up.log 2>&1; then
    cat up.log; t_fail "up stopped by $sig after $stage exited 0"
  fi
  grep -q "test hook: stopping with $sig after stage $stage" up.log || { cat up.log; t_fail "$c: the hook did not fire"; }
  grep -q 'up did not finish' up.log || { cat up.log; t_fail "$c: no cleanup message"; }
  clean "up stopped by $sig after stage $stage"
  t_ok "up stopped by $sig after stage $stage: nothing left"
done

# 2. a signal from outside while up waits (the hook holds it after the stage)
for c in slurmd:TERM wait:INT; do
  stage=${c%%:*} sig=${c#*:}
  # set -m: without job control bash starts background commands with INT ignored, and a
  # script cannot trap a signal ignored on entry
  set -m
  OMPML_LC_STOP_AT=$stage OMPML_LC_STOP_SIGNAL=HOLD "$LC" up 2 >up.log 2>&1 &
  pid=$!
  set +m
  t_wait_line "test hook: holding after stage $stage" up.log 60
  kill "-$sig" "$pid"
  wait "$pid" && t_fail "up killed by $sig exited 0"
  grep -q 'up did not finish' up.log || { cat up.log; t_fail "$c from outside: no cleanup message"; }
  clean "up killed by $sig from outside after stage $stage"
  t_ok "up killed by $sig from outside after stage $stage: nothing left"
done

# 3. SIGKILL: nothing runs, so things are left; leftovers must say so, up must refuse, down clean
OMPML_LC_STOP_AT=slurmd OMPML_LC_STOP_SIGNAL=HOLD "$LC" up 2 >up.log 2>&1 &
pid=$!
t_wait_line "test hook: holding after stage slurmd" up.log 60
kill -KILL "$pid"
wait "$pid" 2>/dev/null
if "$LC" leftovers >left.txt 2>&1; then cat left.txt; t_fail "leftovers found nothing after a SIGKILLed up"; fi
grep -q "left: namespaces .*$OMPML_LC_PREFIX-node1" left.txt || { cat left.txt; t_fail "leftovers did not list the namespaces"; }
grep -q 'slurmd' left.txt || { cat left.txt; t_fail "leftovers did not list the daemons"; }
if "$LC" up 2 >up2.log 2>&1; then t_fail "up started over a killed cluster"; fi
grep -q "run 'local-cluster.sh down' first" up2.log || { cat up2.log; t_fail "up's refusal does not say what to do"; }
"$LC" down >/dev/null 2>&1 || t_fail "down after a SIGKILLed up failed"
clean "down after a SIGKILLed up"
t_ok "SIGKILLed up: leftovers reported, up refused, down removed everything"

# 4. a whole cycle still works afterwards
"$LC" up 2 >up.log 2>&1 || { cat up.log; t_fail "up after the cleanups failed"; }
"$LC" down >/dev/null 2>&1 || t_fail "down failed"
clean "a full up/down cycle"
t_ok "up and down after all that"
T_PASSED=1
t_log PASS
