#!/bin/bash
# (c) jobs/sweep.sbatch as a 3-task array over a small table, then jobs/sweep-gather.sh as a
# dependent job (afterany): one output file and one result row per task, one CSV.
source "$(dirname "$0")/lib.sh"
t_need_bin ompml-train ompml-data
t_begin sweep
t_synth synth.h5
printf '# test table\nlr\tbatch\n1e-3\t64\n3e-3\t64\n1e-3\t128\n' >table.tsv
id=$(OMPML_SWEEP_TABLE=$T_WORK/table.tsv t_submit --array=0-2 --cpus-per-task=1 --time=00:05:00 \
  "$OMPML_ROOT/jobs/sweep.sbatch" --data synth.h5 --layers "$(t_layers)" --epochs 1)
gid=$(t_submit --dependency=afterany:"$id" "$OMPML_ROOT/jobs/sweep-gather.sh" "sweep-$id")
t_expect "$id" COMPLETED 180
t_expect "$gid" COMPLETED 60
for a in 0 1 2; do
  [[ -s ompml-sweep-${id}_$a.out ]] || t_fail "no output ompml-sweep-${id}_$a.out"
  [[ -s sweep-$id/task-$a.csv ]] || t_fail "no result row sweep-$id/task-$a.csv"
done
csv=sweep-$id/results.csv
[[ $(wc -l <"$csv") == 4 ]] || t_fail "$csv: $(wc -l <"$csv") lines, expected header + 3"
t_grep '^array_job,task,lr,batch,exit_code,test_acc,seconds,final$' "$csv"
t_grep "^$id,0,\"1e-3\",\"64\",0,[0-9]" "$csv"
t_grep "^$id,1,\"3e-3\",\"64\",0,[0-9]" "$csv"
t_grep "^$id,2,\"1e-3\",\"128\",0,[0-9]" "$csv"
# the table's values reached ompml-train
grep -q -- '--lr 3e-3' "ompml-sweep-${id}_1.out" || t_fail "task 1 did not get --lr 3e-3"
t_pass
