#!/bin/bash
# Preemption across nodes: jobs/train-multinode.sbatch on 2 nodes x 2 ranks, signalled as
# Slurm does before the time limit (scancel --signal=USR1 --batch): the batch script on node1
# forwards USR1 to srun, every rank on both nodes stops at the same step after the checkpoint,
# exit 85, the job is requeued, starts again on both nodes with --resume auto and ends with
# /params bitwise equal to an uninterrupted run on the same 2 x 2 ranks (same reduction order).
# The signalled run holds at step 20, after its checkpoint there, until the signal comes
# (OMPML_TEST_HOLD_AT_STEP, announced by a line; its ranks keep reducing the stop flag over the
# link meanwhile), so the signal always lands mid-run, whatever the machine's speed.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin mn_requeue
t_mpi_data d.h5
args=(--data d.h5 "${T_MPI_ARGS[@]}" --epochs 1000 --max-steps 40 --checkpoint-every 10)
mn=$OMPML_ROOT/jobs/train-multinode.sbatch
sb=(--ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1 --time=00:30:00)

ref=$(OMPML_RUN_DIR=ref t_submit "${sb[@]}" "$mn" "${args[@]}")
t_expect "$ref" COMPLETED 180

id=$(OMPML_RUN_DIR=sig OMPML_TEST_HOLD_AT_STEP=20 t_submit "${sb[@]}" "$mn" "${args[@]}")
out=ompml-train-mn-$id.out
t_wait_line 'test hold: step 20, waiting for a stop signal' "$out" 120
scancel --signal=USR1 --batch "$id" || t_fail "scancel --signal=USR1 --batch $id"
t_log "sent USR1 to job $id"
t_expect "$id" COMPLETED 240
[[ $(t_field "$id" Restarts) == 1 ]] || t_fail "Restarts=$(t_field "$id" Restarts), expected 1"
t_grep 'ompml-train checkpointed to sig/ckpt.h5 and stopped \(exit 85\)' "$out"
t_grep 'requeueing job' "$out"
# srun forwards USR1 to every rank, but they get it at different times; rank 0 (which reports)
# may learn of it from the others in the stop-flag reduction (seen in CI's fresh root)
t_grep 'stopped by (SIGUSR1|a signal on another rank) at step 20:' "$out"
# both runs, before and after the requeue, on the two nodes
[[ $(grep -c 'on node\[1-2\]: 4 ranks x 1 threads' "$out") == 2 ]] || t_fail "$out: not two runs on node[1-2]"
[[ $(grep -c '^  mpi       4 ranks on 2 nodes, gradients: hierarchical' "$out") == 2 ]] || t_fail "$out: not two 2-node starts"
t_grep '\(restart 1\)' "$out"
t_grep 'launch: .* --resume auto' "$out"
t_grep 'resume    sig/ckpt.h5 at step 20 ' "$out"
t_final_acc "$out" >/dev/null
t_params_equal ref/ckpt.h5 sig/ckpt.h5
t_pass
