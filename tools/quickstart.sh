#!/usr/bin/env bash
# The quick start's first command: install the dependencies (Debian 12, as root), build the
# host preset, import Fashion-MNIST into data/fashion-mnist.h5 and train the default MLP
# (784-512-256-10 relu, Adam 1e-3, batch 128, 10 epochs) to its final test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then tools/install-deps.sh; else sudo tools/install-deps.sh; fi
cmake --preset host
cmake --build --preset host -j "$(nproc)"
bin=build/host/bin
[ -f data/fashion-mnist.h5 ] ||
  "$bin/ompml-data" import-idx /usr/share/datasets/fashion-mnist -o data/fashion-mnist.h5
"$bin/ompml-train" --data data/fashion-mnist.h5 --layers 784,512,256,10 --activation relu \
  --epochs 10 --batch 128 --optimizer adam --lr 1e-3 --seed 1 --backend omp \
  --metrics build/host/quickstart-metrics.jsonl --checkpoint build/host/quickstart.h5
