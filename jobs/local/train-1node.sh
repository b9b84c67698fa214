#!/bin/bash
# train-1node.sh: ompml-train on one node with mpirun, one MPI rank per GPU.
#
# usage: jobs/local/train-1node.sh [-n RANKS] [--] [ompml-train arguments...]
#
#   -n RANKS   number of ranks; default: the GPUs `nvidia-smi -L` lists, or 1 rank on the CPU
#              when there is no GPU (or no nvidia-smi).
#   Everything else goes to ompml-train unchanged.
#
# Environment:
#   OMPML_BIN        folder holding ompml-train (default: build/gpu/bin of this checkout)
#   MPIRUN           the launcher (default: mpirun; the flags below are Open MPI's)
#   OMP_NUM_THREADS  OpenMP threads per rank (default: cores / ranks, at least 1)
#
# Examples:
#   jobs/local/train-1node.sh --data data/fashion-mnist.h5 --epochs 5
#   jobs/local/train-1node.sh -n 2 -- --backend cuda --data data/fashion-mnist.h5
#   OMPML_BIN=build/host/bin jobs/local/train-1node.sh -n 4 --data data/tiny.h5
#
# Why it looks like this:
# - Every rank sees every GPU and picks its own (node-local rank % GPUs, lib/parallel/comm.hpp),
#   so no per-rank CUDA_VISIBLE_DEVICES wrapper is needed.
# - --bind-to none: Open MPI binds each rank to ONE core when np <= 2, which would pile all
#   of a rank's OpenMP threads (host-side work, the CPU path) onto that core.
# - With GPUs, OMP_TARGET_OFFLOAD=MANDATORY (unless set already) turns a GPU the runtime
#   cannot use into an error instead of a silent, slow run on the host.
# - Open MPI refuses to run as root without the two OMPI_ALLOW_RUN_AS_ROOT variables
#   (containers); they are set only when running as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${OMPML_BIN:-$root/build/gpu/bin}
mpirun=${MPIRUN:-mpirun}

ranks=""
if [ "${1:-}" = "-n" ]; then
    ranks=${2:?"-n needs a number of ranks"}
    shift 2
fi
[ "${1:-}" = "--" ] && shift

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ -z "$ranks" ]; then
    ranks=$((gpus > 0 ? gpus : 1))
fi
case $ranks in
    '' | *[!0-9]* | 0) echo "train-1node.sh: bad rank count '$ranks'" >&2; exit 2 ;;
esac

if [ ! -x "$bin/ompml-train" ]; then
    echo "train-1node.sh: no ompml-train in $bin (build it: cmake --preset gpu && cmake --build build/gpu; or set OMPML_BIN)" >&2
    exit 2
fi

cores=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$((cores / ranks > 0 ? cores / ranks : 1))}
if [ "$gpus" -gt 0 ]; then
    export OMP_TARGET_OFFLOAD=${OMP_TARGET_OFFLOAD:-MANDATORY}
fi
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores is legal (a CPU test run): --oversubscribe keeps Open MPI from refusing.
oversub=()
[ "$ranks" -gt "$cores" ] && oversub=(--oversubscribe)

echo "train-1node.sh: $ranks rank(s), $gpus GPU(s), OMP_NUM_THREADS=$OMP_NUM_THREADS, $bin/ompml-train" >&2
exec "$mpirun" -n "$ranks" --bind-to none "${oversub[@]}" -x OMP_NUM_THREADS ${OMP_TARGET_OFFLOAD:+-x OMP_TARGET_OFFLOAD} \
    "$bin/ompml-train" "$@"
