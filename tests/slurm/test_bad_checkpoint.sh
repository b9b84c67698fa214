#!/bin/bash
# (f) A truncated checkpoint: `--resume FILE` fails clearly (FAILED, the file named in the
# output); `--resume auto` falls back to the previous good checkpoint (FILE.prev) and ends
# with /params bitwise equal to the run that wrote them.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin bad_checkpoint
t_synth synth.h5
args=(--data synth.h5 --layers "$(t_layers)" --epochs 1000 --max-steps 320 --batch 64
      --checkpoint-every 100 --seed 5)
sb=(--ntasks-per-node=1 --gpus-per-node=1 --cpus-per-task=1 --time=00:05:00)

id=$(OMPML_RUN_DIR=run t_submit "${sb[@]}" "$OMPML_ROOT/jobs/train.sbatch" "${args[@]}")
t_expect "$id" COMPLETED 120
[[ -s run/ckpt.h5 && -s run/ckpt.h5.prev ]] || t_fail "expected run/ckpt.h5 and run/ckpt.h5.prev: $(ls run)"
cp run/ckpt.h5 good.h5
truncate -s $(($(stat -c %s run/ckpt.h5) / 2)) run/ckpt.h5

# explicit file: must fail, naming it
id=$(OMPML_RUN_DIR=explicit t_submit "${sb[@]}" "$OMPML_ROOT/jobs/train.sbatch" "${args[@]}" \
  --resume run/ckpt.h5)
t_expect "$id" FAILED 60
t_grep 'run/ckpt\.h5' "ompml-train-$id.out"
[[ $(stat -c %s run/ckpt.h5) == $(($(stat -c %s good.h5) / 2)) ]] || t_fail "the failed job changed run/ckpt.h5"

# auto: falls back to run/ckpt.h5.prev and finishes the run
id=$(OMPML_RUN_DIR=run t_submit "${sb[@]}" "$OMPML_ROOT/jobs/train.sbatch" "${args[@]}" --resume auto)
t_expect "$id" COMPLETED 120
t_grep 'ckpt\.h5\.prev' "ompml-train-$id.out"
t_final_acc "ompml-train-$id.out" >/dev/null
t_params_equal good.h5 run/ckpt.h5
t_pass
