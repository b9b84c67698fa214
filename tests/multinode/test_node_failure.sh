#!/bin/bash
# A node dies mid-run. jobs/train-multinode.sbatch trains on 2 nodes x 2 ranks (submitted with
# --no-requeue, as a user who wants to decide for themselves does), a run long by steps that
# cannot end by itself during the test. Once it has announced epoch 4 (step 20; a checkpoint
# every 5 steps), tools/local-cluster.sh crash node2 SIGKILLs everything on node2: slurmd, the
# job step, its 2 ranks. Then:
#   - the job ends within BOUND_S with state NODE_FAIL and a non-zero exit code, without a
#     "final:" line, and node2 is DOWN. The ranks on node1 do not end by themselves: Open MPI
#     reports the lost peer and its requests never complete, and srun waits for node2's tasks,
#     so the end comes from Slurm declaring node2 dead (SlurmdTimeout=20 s on the local
#     cluster; 300 s by default); BOUND_S = 90 leaves room for its ping interval and KillWait;
#   - nothing of the job is left on node1 (only its slurmd remains in node1's namespace);
#   - the last checkpoint is valid (tests/check_checkpoint_h5py.py schema) and is the last one
#     the run wrote: at the last epoch it logged (metrics.jsonl), or the one before;
#   - a resume on the remaining node with fewer ranks (--nodes=1, 2 ranks: the one-node shared-
#     memory sum) continues from that step, 30 more steps, and ends within T_RTOL of a 1-rank run
#     of the same steps (rank-count independence across the failure).
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin mn_node_failure
t_mpi_data d.h5
BOUND_S=${BOUND_S:-90}
common=(--data d.h5 "${T_MPI_ARGS[@]}" --epochs 100000 --checkpoint-every 5)
mn=$OMPML_ROOT/jobs/train-multinode.sbatch
sb=(--cpus-per-task=1 --time=00:30:00)

id=$(OMPML_RUN_DIR=crash t_submit "${sb[@]}" --no-requeue --ntasks-per-node=2 --gpus-per-node=2 "$mn" \
  "${common[@]}" --max-steps 100000000)
out=ompml-train-mn-$id.out
t_wait_line 'epoch 4/100000 step 20 ' "$out" 120
t0=$SECONDS
"$LC" crash node2
t_log "node2 crashed (slurmd, job step, ranks killed)"
t_expect "$id" NODE_FAIL "$BOUND_S"
t_log "job $id ended $((SECONDS - t0)) s after the crash (bound $BOUND_S s)"
code=$(t_field "$id" ExitCode)
[[ -n $code && $code != 0:0 ]] || t_fail "job $id: ExitCode=$code, expected non-zero"
t_grep 'Node failure on node2|DUE TO NODE FAILURE' "$out"
! grep -q '^final:' "$out" || t_fail "$out: the run ended by itself"
[[ $(t_node_state node2) == down* ]] || t_fail "node2 is '$(t_node_state node2)', not down"

# node1 keeps only its slurmd (the batch script, srun and both ranks ended with the job)
slurmd1=$(<"$OMPML_LC_DIR/run/slurmd-node1.pid")
deadline=$((SECONDS + 60))
while :; do
  left=$(ip netns pids "$OMPML_LC_PREFIX-node1" | grep -vx "$slurmd1" || true)
  [[ -z $left ]] && break
  ((SECONDS < deadline)) || { ps -o pid,args -p "$(echo $left | tr ' ' ,)"; t_fail "processes of the job left on node1"; }
  sleep 0.5
done
t_ok "node1: only slurmd left"

# The last checkpoint: rank 0 appends each epoch's line to the metrics (flushed at once), then
# checkpoints that step (an epoch is 5 steps, a checkpoint every 5), so the checkpoint is at the
# last epoch's step, or at the one before when the run died between the two.
ck=crash/ckpt.h5
t_ckpt_valid "$ck"
step=$(t_ckpt_step "$ck")
last=$(tail -n 1 crash/metrics.jsonl | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')
((last >= 20 && (step == last || step == last - 5))) ||
  t_fail "$ck is at step $step, the last epoch in crash/metrics.jsonl at step $last"
t_ok "last checkpoint $ck valid, at step $step (last epoch: step $last)"

target=$((step + 30))
ref=$(OMPML_RUN_DIR=ref t_submit "${sb[@]}" --nodes=1 --ntasks-per-node=1 --gpus-per-node=1 "$mn" \
  "${common[@]}" --max-steps "$target")
res=$(OMPML_RUN_DIR=res t_submit "${sb[@]}" --nodes=1 --ntasks-per-node=2 --gpus-per-node=2 "$mn" \
  "${common[@]}" --max-steps "$target" --resume "$ck")
t_expect "$ref" COMPLETED 180
t_expect "$res" COMPLETED 180
rout=ompml-train-mn-$res.out
[[ $(t_field "$res" NodeList) == node1 ]] || t_fail "the resume ran on $(t_field "$res" NodeList)"
t_grep '^  mpi       2 ranks on 1 node, gradients: shared memory' "$rout"
t_grep "^  resume    $ck at step $step " "$rout"
t_grep "^final: .* steps $target " "$rout"
t_compare params ref/ckpt.h5 res/ckpt.h5 "$T_RTOL"
t_ok "resumed on node1 with 2 ranks from step $step to $target: equal to 1 rank"
t_pass
