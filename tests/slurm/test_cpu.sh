#!/bin/bash
# (b) jobs/cpu.sbatch on the "cpu" partition: 2 ranks x 1 OpenMP thread, host build.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin cpu
t_synth synth.h5
id=$(t_submit --ntasks-per-node=2 --cpus-per-task=1 --time=00:05:00 \
  "$OMPML_ROOT/jobs/cpu.sbatch" --data synth.h5 --layers "$(t_layers)" --epochs 2 --batch 64)
t_expect "$id" COMPLETED 120
out=ompml-cpu-$id.out
[[ $(t_field "$id" Partition) == cpu ]] || t_fail "ran in partition $(t_field "$id" Partition)"
t_grep '2 ranks x 1 threads' "$out"
t_acc_ok "$(t_final_acc "$out")"
t_pass
