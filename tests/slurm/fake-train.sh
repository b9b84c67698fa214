#!/bin/bash
# Stand-in for ompml-train, used ONLY by selftest.sh (via OMPML_TRAIN_CMD) to check the
# harness and the jobs/ protocol before the real program has its features. It follows the
# contract in jobs/README.md: steps of 0.1 s; on SIGUSR1 it finishes the step, writes its
# "checkpoint" (the step number) atomically and exits 85; --resume auto continues from it;
# at the end it writes the checkpoint and prints "final: test_acc ...". Like ompml-train with
# OMPML_TEST_HOLD_AT_STEP=N, it holds after step N until the signal comes, announcing it.
data="" ckpt="" resume="" max=${FAKE_STEPS:-40} acc=0.5
echo "fake-train args: $*"
while (($#)); do
  case $1 in
    --data) data=$2; shift ;;
    --checkpoint) ckpt=$2; shift ;;
    --resume) resume=$2; shift ;;
    --max-steps) max=$2; shift ;;
    --lr) acc=0.$((RANDOM % 9 + 1)); shift ;;
    --*) [[ ${2:-} != --* && $# -gt 1 ]] && shift ;;
  esac
  shift
done
[[ -e $data ]] || { echo "ompml-train: error: $data: no such file" >&2; exit 1; }
stop=0
trap 'stop=1' USR1
step=0
if [[ $resume == auto && -s $ckpt ]]; then step=$(<"$ckpt"); echo "resumed from $ckpt at step $step"; fi
save() { echo "$step" >"$ckpt.tmp" && mv -f "$ckpt.tmp" "$ckpt"; }
while ((step < max)); do
  sleep 0.1
  step=$((step + 1))
  if [[ $step == "${OMPML_TEST_HOLD_AT_STEP:-}" ]]; then
    save
    echo "test hold: step $step, waiting for a stop signal"
    while ((!stop)); do sleep 0.1; done
  fi
  if ((stop)); then save; echo "checkpointed at step $step; exit 85"; exit 85; fi
done
save
echo "final: test_acc $acc steps $step"
