#!/bin/bash
# (d) A job signalled before its end (scancel --signal=USR1 --batch, as Slurm does for
# --signal=B:USR1@N) checkpoints, exits 85, is requeued, resumes with --resume auto and ends
# with /params bitwise equal to an uninterrupted run. 2 ranks, so the stop is collective.
# The signalled run holds at step 100, after its checkpoint there, until the signal comes
# (OMPML_TEST_HOLD_AT_STEP, announced by a line): the signal always lands mid-run, whatever the
# machine's speed; the requeued run resumes at step 100 and ends at T_STEPS (default 400).
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin requeue
export T_FEATURES=${T_FEATURES:-128} T_HIDDEN=${T_HIDDEN:-128} T_TRAIN=${T_TRAIN:-4096}
t_synth synth.h5
args=(--data synth.h5 --layers "$(t_layers)" --epochs 1000 --max-steps "${T_STEPS:-400}"
      --batch 64 --checkpoint-every 100 --seed 3)
sb=(--ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1 --time=00:10:00)

ref=$(OMPML_RUN_DIR=ref t_submit "${sb[@]}" "$OMPML_ROOT/jobs/train.sbatch" "${args[@]}")
t_expect "$ref" COMPLETED 180

id=$(OMPML_RUN_DIR=sig OMPML_TEST_HOLD_AT_STEP=100 t_submit "${sb[@]}" "$OMPML_ROOT/jobs/train.sbatch" "${args[@]}")
t_wait_line 'test hold: step 100, waiting for a stop signal' "ompml-train-$id.out" 120
scancel --signal=USR1 --batch "$id" || t_fail "scancel --signal=USR1 --batch $id"
t_log "sent USR1 to job $id"
t_expect "$id" COMPLETED 240
out=ompml-train-$id.out
[[ $(t_field "$id" Restarts) == 1 ]] || t_fail "Restarts=$(t_field "$id" Restarts), expected 1"
t_grep 'ompml-train checkpointed to sig/ckpt.h5 and stopped \(exit 85\)' "$out"
t_grep 'requeueing job' "$out"
t_grep "\(restart 1\)" "$out"
t_grep 'launch: .* --resume auto' "$out"
t_grep 'stopped by SIGUSR1 at step 100:' "$out"
t_final_acc "$out" >/dev/null
t_params_equal ref/ckpt.h5 sig/ckpt.h5
t_pass
