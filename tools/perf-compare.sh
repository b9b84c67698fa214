#!/usr/bin/env bash
# The performance gate: builds two commits of ompml (host preset) and times them against each
# other in alternating rounds on this machine, so both meet the same load and the same CPU.
#
#   tools/perf-compare.sh BASE [HEAD]          # HEAD defaults to HEAD
#   tools/perf-compare.sh --rounds 5 --threshold 1.25 --out runs/perf 243be8d HEAD
#
# Each round runs, for BASE and for HEAD (the order alternates round by round):
#   ompml-bench --backend omp --kernel all       every bench kernel at its default size;
#   ompml-bench --kernel gemm at the MLP's shapes (784-512-256-10, batch 128);
#   the same gemm shapes and train_step with --precision bf16, where the build has it;
#   ompml-train, three epochs of the quick-start model, the best epoch (fp32, and bf16 where the
#   build has it).
# It prints one row per measurement: the HEAD/BASE time ratio (the median over rounds of the
# per-round ratios, and its range, and the ratio of the two builds' best times), and a verdict:
# FAIL (exit 1) where a row is >= --threshold both in the median ratio and best/best (load only
# adds time: a real slowdown raises the best time too), else PASS; where a row is over the
# threshold after the rounds, as many rounds again run first and the verdict is on all of them (a
# slowdown is there in every round, a burst of load from another process is not). Rows only one
# build has are listed as new/gone.
# Raw figures go to --out (rounds.csv), with the CPU and both commits.
#
# Builds are kept in build/perf/<commit> (a `git archive` of the commit, configured with the
# host preset) and reused. --head-build DIR times HEAD with DIR/bin's programs instead of
# building it (CI: the quick start's build/host of the same clean clone, which saves one build);
# their --version must name HEAD's commit, without -dirty, and the host preset. The training
# data is data/fashion-mnist.h5 (imported from Debian's dataset-fashion-mnist with HEAD's
# ompml-data where missing). CI runs this against the commit in .ci/perf-baseline (.ci/steps);
# moving that baseline forward is a commit of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 threshold=1.25 out="" head_build=""
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --threshold) threshold=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --head-build) head_build=$2; shift 2 ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "perf-compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
(($# >= 1 && $# <= 2)) || { echo "perf-compare.sh: usage: perf-compare.sh [options] BASE [HEAD]" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1)) || { echo "perf-compare.sh: --rounds '$rounds': need a positive integer" >&2; exit 2; }
resolve() {
  git rev-parse --verify --quiet "$1^{commit}" ||
    { echo "perf-compare.sh: '$1' is not a commit of this repository" >&2; exit 2; }
}
base=$(resolve "$1")
head=$(resolve "${2:-HEAD}")
out=${out:-build/perf/runs/${base:0:12}-${head:0:12}}
mkdir -p "$out"

# build/perf/<commit>/build/host/bin: the programs of one commit, built once.
build() {
  local sha=$1 dir=build/perf/$1
  if [ -f "$dir/.built" ]; then
    echo "perf-compare.sh: ${sha:0:12} already built in $dir" >&2
    return
  fi
  echo "perf-compare.sh: building ${sha:0:12} in $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  git archive "$sha" | tar -x -C "$dir"
  (cd "$dir" && cmake --preset host >/dev/null &&
    cmake --build --preset host -j "$(nproc)" --target ompml-bench ompml-train ompml-data >/dev/null) ||
    { echo "perf-compare.sh: building ${sha:0:12} failed (see above)" >&2; exit 1; }
  touch "$dir/.built"
}
# --head-build: DIR/bin/<program> --version reads "<program> <version> (git <commit12>, preset host, ...".
head_bin=build/perf/$head/build/host/bin
if [ -n "$head_build" ]; then
  for p in ompml-bench ompml-train ompml-data; do
    v=$("$head_build/bin/$p" --version 2>/dev/null | head -n 1) || v="(cannot run $head_build/bin/$p)"
    [[ $v == *"(git ${head:0:12}, preset host,"* ]] ||
      { echo "perf-compare.sh: --head-build $head_build: '$v' is not a host-preset build of ${head:0:12} without local changes" >&2; exit 2; }
  done
  head_bin=$head_build/bin
fi
build "$base"
[ -n "$head_build" ] || build "$head"

data=data/fashion-mnist.h5
if [ ! -f "$data" ]; then
  "$head_bin/ompml-data" import-idx /usr/share/datasets/fashion-mnist -o "$data" >&2
fi
exec /usr/bin/python3 tools/perf_rounds.py --rounds "$rounds" --threshold "$threshold" --out "$out" --data "$data" \
  "base=${base:0:12}=build/perf/$base/build/host/bin" "head=${head:0:12}=$head_bin"
