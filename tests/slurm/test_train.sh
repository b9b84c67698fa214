#!/bin/bash
# (a) jobs/train.sbatch, 2 ranks (one per GPU of the test node), on a small synthetic dataset
# made by ompml-data: the job completes and prints its "final: test_acc" line.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin train
t_synth synth.h5
id=$(t_submit --ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1 --time=00:05:00 \
  "$OMPML_ROOT/jobs/train.sbatch" --data synth.h5 --layers "$(t_layers)" --epochs 2 --batch 64)
t_expect "$id" COMPLETED 120
out=ompml-train-$id.out
t_grep '2 ranks x 1 threads' "$out"
t_acc_ok "$(t_final_acc "$out")"
[[ -s runs/ompml-train-$id/ckpt.h5 ]] || t_fail "no final checkpoint runs/ompml-train-$id/ckpt.h5"
t_pass
