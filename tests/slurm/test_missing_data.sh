#!/bin/bash
# (e) A job whose dataset is missing: FAILED state, non-zero exit code, and ompml-train's
# message naming the file (data/README.md: "<file>: no such file") in the job output.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train
t_begin missing_data
id=$(t_submit --ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1 --time=00:05:00 \
  "$OMPML_ROOT/jobs/train.sbatch" --data "$T_WORK/no-such-data.h5" --epochs 1)
t_expect "$id" FAILED 60
[[ $(t_field "$id" ExitCode) != 0:0 ]] || t_fail "ExitCode 0:0"
t_grep 'no-such-data\.h5: no such file' "ompml-train-$id.out"
t_pass
