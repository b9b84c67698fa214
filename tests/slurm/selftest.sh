#!/bin/bash
# Harness self-test: the private cluster starts and stops, a trivial job runs, srun --mpi=pmix
# gives distinct ranks, and the jobs/ scripts' plumbing (argument merging, USR1 -> checkpoint
# -> requeue -> --resume auto, failure state, sweep rows and gather) works, with the stand-in
# fake-train.sh in place of ompml-train. The real programs are tested by the other scripts.
source "$(dirname "$0")/lib.sh"
t_begin selftest

# 1. a trivial job
id=$(t_submit -o hostname-%j.out --wrap hostname)
t_expect "$id" COMPLETED 30
t_grep "^$(hostname)$" "hostname-$id.out"

# 2. srun --mpi=pmix: two distinct ranks
srun --mpi=pmix -n 2 bash -c 'echo "rank ${PMIX_RANK:-none}"' | sort >ranks.txt ||
  t_fail "srun --mpi=pmix failed"
[[ $(tr '\n' ' ' <ranks.txt) == "rank 0 rank 1 " ]] || t_fail "srun --mpi=pmix ranks: $(cat ranks.txt)"
t_ok "srun --mpi=pmix gives ranks 0 and 1"

export OMPML_TRAIN_CMD=$T_HERE/fake-train.sh OMPML_BIN=/nonexistent
: >data.h5
# 3. train.sbatch: user arguments replace the defaults; run dir files
id=$(t_submit --ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/train.sbatch" --data data.h5 --epochs 1 --max-steps 3)
t_expect "$id" COMPLETED 60
out=ompml-train-$id.out
t_grep '^fake-train args: .*--epochs 1 ' "$out"
grep -q -- '--epochs 10' "$out" && t_fail "default --epochs 10 not replaced"
t_grep "--checkpoint runs/ompml-train-$id/ckpt.h5" "$out"
t_grep '^final: test_acc' "runs/ompml-train-$id/train.log"
t_ok "train.sbatch plumbing"

# 3b. the mpirun launcher inside the allocation (OMPML_LAUNCH=mpirun)
id=$(OMPML_LAUNCH=mpirun t_submit --ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/train.sbatch" --data data.h5 --max-steps 2)
t_expect "$id" COMPLETED 60
t_grep 'launch: mpirun -np 1 ' "ompml-train-$id.out"
t_grep '^final: test_acc' "ompml-train-$id.out"
t_ok "OMPML_LAUNCH=mpirun"

# 4. USR1 -> exit 85 -> requeue -> --resume auto -> completes
id=$(OMPML_TEST_HOLD_AT_STEP=3 t_submit --ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/train.sbatch" --data data.h5 --max-steps 60)
t_wait_line 'test hold: step 3, waiting for a stop signal' "ompml-train-$id.out" 60
scancel --signal=USR1 --batch "$id" || t_fail "scancel --signal=USR1 --batch"
t_expect "$id" COMPLETED 90
out=ompml-train-$id.out
[[ $(t_field "$id" Restarts) == 1 ]] || t_fail "Restarts=$(t_field "$id" Restarts), expected 1"
t_grep 'exit 85' "$out"
t_grep 'requeueing job' "$out"
t_grep '^fake-train args: .*--resume auto' "$out"
t_grep '^resumed from .* at step 3$' "$out"
t_grep '^final: test_acc 0\.[0-9] steps 60' "$out"
t_ok "USR1 -> checkpoint -> requeue -> resume"

# 5. a failing ompml-train makes a FAILED job with the message in its output
id=$(t_submit --ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/train.sbatch" --data missing.h5)
t_expect "$id" FAILED 60
t_grep 'missing.h5: no such file' "ompml-train-$id.out"

# 5b. a launcher that exits 0 although ompml-train never finished (no "final:" line) fails the
# job instead of completing it untrained
id=$(OMPML_TRAIN_CMD=true t_submit --ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/train.sbatch" --data data.h5)
t_expect "$id" FAILED 60
t_grep "the launcher exited 0 but ompml-train printed no 'final:' line" "ompml-train-$id.out"
t_ok "exit 0 without a final line: FAILED"

# 6. sweep rows + gather (dependent job, afterany)
printf 'lr\tbatch\n1e-3\t32\n1e-2\t64\n' >sweep.tsv
id=$(OMPML_SWEEP_TABLE=$T_WORK/sweep.tsv t_submit --array=0-1 --cpus-per-task=1 \
  "$OMPML_ROOT/jobs/sweep.sbatch" --data data.h5 --max-steps 3)
gid=$(t_submit --dependency=afterany:"$id" "$OMPML_ROOT/jobs/sweep-gather.sh" "sweep-$id")
t_expect "$id" COMPLETED 60
t_expect "$gid" COMPLETED 30
csv=sweep-$id/results.csv
[[ $(wc -l <"$csv") == 3 ]] || t_fail "$csv: $(wc -l <"$csv") lines, expected 3"
t_grep '^array_job,task,lr,batch,exit_code,test_acc,seconds,final$' "$csv"
t_grep "^$id,0,\"1e-3\",\"32\",0,0\.[1-9]," "$csv"
t_grep "^$id,1,\"1e-2\",\"64\",0,0\.[1-9]," "$csv"
[[ -f ompml-sweep-${id}_0.out && -f ompml-sweep-${id}_1.out ]] || t_fail "no %A_%a output files"
t_ok "sweep + gather"

# 7. stop really stops: the daemons' pids are gone
pids=$(cat "$OMPML_SLURM_DIR"/run/*.pid)
"$T_HERE/cluster.sh" stop
for p in $pids; do kill -0 "$p" 2>/dev/null && t_fail "pid $p still alive after stop"; done
t_ok "cluster stopped"
t_pass
