#!/usr/bin/env bash
# Installs ompml's build, test and reference dependencies from Debian 12's archive (as root).
# CUDA (nvcc, cuBLAS) is not a Debian package: the CUDA backend is built when
# /usr/local/cuda/bin/nvcc (or nvcc on PATH) exists and skipped otherwise.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get install)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  cmake make clang-19 libomp-19-dev lld-19 \
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libhdf5-dev hdf5-tools zlib1g-dev \
  libboost-test-dev libcli11-dev libopenblas-dev \
  python3-torch python3-h5py python3-numpy python3-matplotlib \
  dataset-fashion-mnist slurm-wlm munge \
  >/dev/null
echo "install-deps.sh: dependencies installed"
