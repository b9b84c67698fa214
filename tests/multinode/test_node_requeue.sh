#!/bin/bash
# A node dies mid-run and the job, submitted as jobs/train-multinode.sbatch is shipped
# (#SBATCH --requeue), goes back to the queue by itself: Slurm requeues a job whose node fails.
# It waits there while only one of its two nodes is up, starts again once node2 is back
# (local-cluster.sh revive node2: slurmd restarts, the controller returns the node to service),
# continues from its own checkpoint with --resume auto, and ends with /params bitwise equal to an
# uninterrupted run on the same 2 x 2 ranks. The run holds at step 20, after its checkpoint there
# (OMPML_TEST_HOLD_AT_STEP, announced by a line; its ranks keep reducing the stop flag over the
# link), so the crash always lands mid-run; the restart resumes at step 20 and does not hold.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin mn_node_requeue
t_mpi_data d.h5
args=(--data d.h5 "${T_MPI_ARGS[@]}" --epochs 1000 --max-steps 40 --checkpoint-every 10)
mn=$OMPML_ROOT/jobs/train-multinode.sbatch
sb=(--ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1 --time=00:30:00)

ref=$(OMPML_RUN_DIR=ref t_submit "${sb[@]}" "$mn" "${args[@]}")
t_expect "$ref" COMPLETED 180

id=$(OMPML_RUN_DIR=rq OMPML_TEST_HOLD_AT_STEP=20 t_submit "${sb[@]}" "$mn" "${args[@]}")
out=ompml-train-mn-$id.out
t_wait_line 'test hold: step 20, waiting for a stop signal' "$out" 120
"$LC" crash node2
t_log "node2 crashed"
# requeued (not ended) once Slurm declares node2 dead: bounded as in test_node_failure.sh
deadline=$((SECONDS + 90))
until [[ $(t_field "$id" Restarts) == 1 && $(t_states "$id") == PENDING ]]; do
  ((SECONDS < deadline)) || { scontrol show job "$id"; t_fail "job $id not requeued within 90 s of the crash"; }
  sleep 0.5
done
t_ok "job $id requeued after node2 failed ($(t_field "$id" Reason))"
[[ $(t_node_state node2) == down* ]] || t_fail "node2 is '$(t_node_state node2)', not down"
t_grep 'DUE TO NODE FAILURE|Node failure on node2' "$out"

"$LC" revive node2
t_wait_node_state node2 '^(idle|allocated|mixed)' 60
t_expect "$id" COMPLETED 240
[[ $(t_field "$id" Restarts) == 1 ]] || t_fail "Restarts=$(t_field "$id" Restarts), expected 1"
t_grep '\(restart 1\) on node\[1-2\]: 4 ranks' "$out"
t_grep 'launch: .* --resume auto' "$out"
t_grep 'resume    rq/ckpt.h5 at step 20 ' "$out"
t_grep '^final: .* steps 40 ' "$out"
t_params_equal ref/ckpt.h5 rq/ckpt.h5
t_pass
