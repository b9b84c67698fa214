#!/bin/bash
# jobs/train-multinode.sbatch, unchanged, on 2 nodes x 2 ranks of the local cluster, with the
# site settings given as a user gives them (OMPML_BIN in the environment; tasks, GPUs, CPUs and
# time on the sbatch command line): the job completes on node1 and node2, ompml-train reports
# "4 ranks on 2 nodes" and its auto transport picks the hierarchical sum (shared memory in each
# node, the fixed-order exchange between the 2 node leaders); its parameters and loss history equal a
# 1-rank run of the same script with the same global batch within T_RTOL (the rank-count tests'
# bound). The same with OMPML_LAUNCH=mpirun (Open MPI's mpirun starts the ranks inside the
# allocation, for sites without PMIx): bitwise the srun run's parameters. With
# --reproducible-ranks 4 the hierarchical sum is the fixed split tree (each node's 2 ranks, then
# the 2 node sums by the exchange between the leaders): bitwise the 1-rank run's checkpoint.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin mn_train
t_mpi_data d.h5
args=(--data d.h5 "${T_MPI_ARGS[@]}" --epochs 6)   # 30 steps
mn=$OMPML_ROOT/jobs/train-multinode.sbatch
site=(--cpus-per-task=1 --time=00:30:00)   # 1 CPU per rank; a limit well past --signal=B:USR1@300

one=$(OMPML_RUN_DIR=one t_submit "${site[@]}" --nodes=1 --ntasks-per-node=1 --gpus-per-node=1 "$mn" "${args[@]}")
two=$(OMPML_RUN_DIR=two t_submit "${site[@]}" --ntasks-per-node=2 --gpus-per-node=2 "$mn" "${args[@]}")
mpr=$(OMPML_RUN_DIR=mpr OMPML_LAUNCH=mpirun t_submit "${site[@]}" --ntasks-per-node=2 --gpus-per-node=2 "$mn" "${args[@]}")
rep=(--reproducible-ranks 4)
one4=$(OMPML_RUN_DIR=one4 t_submit "${site[@]}" --nodes=1 --ntasks-per-node=1 --gpus-per-node=1 "$mn" "${args[@]}" "${rep[@]}")
two4=$(OMPML_RUN_DIR=two4 t_submit "${site[@]}" --ntasks-per-node=2 --gpus-per-node=2 "$mn" "${args[@]}" "${rep[@]}")
for id in "$one" "$two" "$mpr" "$one4" "$two4"; do t_expect "$id" COMPLETED 240; done

for id in "$two" "$mpr"; do
  out=ompml-train-mn-$id.out
  [[ $(t_field "$id" NodeList) == "node[1-2]" ]] || t_fail "job $id ran on $(t_field "$id" NodeList)"
  t_grep 'on node\[1-2\]: 4 ranks x 1 threads' "$out"
  t_grep '^  mpi       4 ranks on 2 nodes, gradients: hierarchical: shared memory in each node \(2 ranks here\), MPI exchange, fixed order on host memory between 2 node leaders' "$out"
  t_grep '^  rank 1    node1, local rank 1 of 2' "$out"
  t_grep '^  rank 2    node2, local rank 0 of 2' "$out"
  t_acc_ok "$(t_final_acc "$out")"
done
t_grep 'launch: srun --mpi=pmix' "ompml-train-mn-$two.out"
t_grep 'launch: mpirun -np 4' "ompml-train-mn-$mpr.out"
t_grep '^  mpi       1 rank on 1 node,' "ompml-train-mn-$one.out"

t_compare params one/ckpt.h5 two/ckpt.h5 "$T_RTOL"
t_compare metrics one/metrics.jsonl two/metrics.jsonl "$T_RTOL"
# the same 4 ranks in the same places sum in the same order, whoever started them
/usr/bin/python3 "$OMPML_ROOT/tests/check_checkpoint_h5py.py" same two/ckpt.h5 mpr/ckpt.h5 ||
  t_fail "srun and mpirun runs differ"
t_ok "2 nodes x 2 ranks (srun and mpirun, hierarchical sum) equal 1 rank with the same global batch"

t_grep '^  mpi       4 ranks on 2 nodes, gradients: hierarchical: shared memory in each node \(2 ranks here\), MPI exchange, fixed order on host memory between 2 node leaders' "ompml-train-mn-$two4.out"
t_grep '^  run .*reproducible_ranks 4' "ompml-train-mn-$two4.out"
/usr/bin/python3 "$OMPML_ROOT/tests/check_checkpoint_h5py.py" same one4/ckpt.h5 two4/ckpt.h5 ||
  t_fail "--reproducible-ranks 4: 2 nodes x 2 ranks (hierarchical) differ from 1 rank"
t_ok "--reproducible-ranks 4: 2 nodes x 2 ranks, hierarchical, bitwise the 1-rank run"
t_pass
