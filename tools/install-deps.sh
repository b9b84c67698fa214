#!/usr/bin/env bash
# Installs everything ompml's build, tests and tools use, from Debian 12's archive (as root).
# Checked on a fresh Debian 12 root (tools/fresh-check.sh), where nothing else is installed.
# CUDA (nvcc, cuBLAS) is not a Debian package: the CUDA backend is built when
# /usr/local/cuda/bin/nvcc (or nvcc on PATH) exists and skipped otherwise.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get install)" >&2
  exit 1
fi
packages=(
  # build: CMake and clang-19 with OpenMP offload. clang-tools-19 carries
  # clang-offload-packager and clang-linker-wrapper, without which every offload build fails;
  # libomp-19-dev the offload runtime and the NVPTX device bitcode.
  cmake make clang-19 clang-tools-19 libomp-19-dev lld-19
  # gcc/g++: FindHDF5 compiles its test program through h5pcc -> mpicc -> gcc, and gcc's
  # g++ is nvcc's default host compiler.
  gcc g++
  # MPI, HDF5 (parallel, for collective reads; serial headers too), Boost.Test, CLI11, BLAS anchor
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libhdf5-dev hdf5-tools zlib1g-dev
  libboost-test-dev libcli11-dev libopenblas-dev
  # JSON (header-only): the metrics log and the trace are written with it, so every string
  # (a commit, a host name, a path) is escaped correctly
  nlohmann-json3-dev
  # independent references and plots (use /usr/bin/python3)
  python3 python3-torch python3-h5py python3-numpy python3-matplotlib
  # the default dataset; the Slurm tests' private cluster
  dataset-fashion-mnist slurm-wlm munge
  # ip and tc (tools/local-cluster.sh: the multinode tests' nodes are network namespaces joined
  # by veth links and a bridge; tc shapes the links); nsenter and unshare are in util-linux,
  # which every Debian has
  iproute2
  # tools the tests and scripts call: xz (runtime bundles), hostname, ps/kill (procps), mount
  # (tests/check_disk_full.sh: a small tmpfs; every installed Debian has it, a minimal root
  # does not); the formatter CI checks the sources with (tools/format.sh); git, from which the
  # performance gate (tools/perf-compare.sh) builds the commits it compares
  xz-utils hostname procps mount clang-format-19 git
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps.sh: dependencies installed"
