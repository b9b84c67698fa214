#!/bin/bash
# sweep-gather.sh: concatenate the per-task rows of a sweep (jobs/sweep.sbatch) into one CSV.
#   jobs/sweep-gather.sh sweep-<array job id> [OUT.csv]          # by hand, after the array
#   sbatch --dependency=afterany:<array job id> jobs/sweep-gather.sh sweep-<array job id>
# OUT defaults to <dir>/results.csv, rows sorted by task. Exit status 0 only when every task
# wrote its row and every row has exit_code 0; the CSV is written in any case.
#SBATCH --job-name=ompml-sweep-gather # name in squeue; also names the output file
#SBATCH --ntasks=1                    # a single process ...
#SBATCH --cpus-per-task=1             # ... on one core
#SBATCH --time=00:05:00               # wall-clock limit
#SBATCH --output=%x-%j.out            # stdout+stderr: <job name>-<job id>.out in the submit dir
# ---- NOTE: change for your cluster ------------------------------------------------------
#SBATCH --partition=cpu               # any partition; no GPU needed
##SBATCH --account=PROJECT            # account to charge (delete one '#' to enable)
# ------------------------------------------------------------------------------------------
set -euo pipefail

dir=${1:?usage: sweep-gather.sh SWEEP_DIR [OUT.csv]}
out=${2:-$dir/results.csv}
[[ -d $dir ]] || { echo "sweep-gather: error: $dir: no such directory" >&2; exit 1; }

shopt -s nullglob
files=("$dir"/task-*.csv)
expected=$(cat "$dir/ntasks" 2>/dev/null || true)
if ((${#files[@]} == 0)); then
  echo "sweep-gather: error: no task-*.csv in $dir (did any task finish?)" >&2
  exit 1
fi

# task ids in numeric order
mapfile -t ids < <(for f in "${files[@]}"; do f=${f##*/task-}; echo "${f%.csv}"; done | sort -n)

header=$(head -n 1 "$dir/task-${ids[0]}.csv")
# A new file beside OUT made by mktemp (exclusive, unpredictable name: nobody sharing the
# directory can have planted a link there), renamed over OUT at the end (mv -T replaces a link
# at OUT instead of following it).
tmp=$(mktemp "$out.tmp.XXXXXXXXXX") || { echo "sweep-gather: error: cannot create a file beside $out" >&2; exit 1; }
trap 'rm -f "$tmp"' EXIT
chmod "$(printf '%o' $((0666 & ~$(umask))))" "$tmp" # as a new file, not mktemp's 0600
echo "$header" >>"$tmp"
status=0
failed=()
for id in "${ids[@]}"; do
  f=$dir/task-$id.csv
  if [[ $(head -n 1 "$f") != "$header" ]]; then
    echo "sweep-gather: error: $f has a different header; skipped" >&2
    status=1
    continue
  fi
  tail -n +2 "$f" >>"$tmp"
  # exit_code is the 4th field from the end (exit_code,test_acc,seconds,"final")
  rc=$(tail -n +2 "$f" | sed -E 's/,"([^"]|"")*"$//' | awk -F, '{print $(NF-2)}')
  [[ $rc == 0 ]] || failed+=("$id")
done
mv -fT "$tmp" "$out"
trap - EXIT

echo "sweep-gather: $out: ${#ids[@]} rows${expected:+ of $expected tasks}"
if [[ -n $expected && ${#ids[@]} -lt $expected ]]; then
  echo "sweep-gather: $((expected - ${#ids[@]})) task(s) wrote no row (still running, or killed before the end)" >&2
  status=1
fi
if ((${#failed[@]})); then
  echo "sweep-gather: task(s) with non-zero exit_code: ${failed[*]}" >&2
  status=1
fi
exit $status
