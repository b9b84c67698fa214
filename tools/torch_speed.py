#!/usr/bin/python3
"""Training throughput of ompml-train against PyTorch CPU on the same model and data.

Trains the 784-512-256-10 relu MLP for one epoch of Fashion-MNIST (batch 128, Adam lr 1e-3)
in PyTorch with torch.set_num_threads(T), and runs `ompml-train ... --epochs 1` with
OMP_NUM_THREADS=T; prints both samples/s (training only, evaluation excluded) and the ratio.

  /usr/bin/python3 tools/torch_speed.py [--ompml-train build/host/bin/ompml-train]
        [--data data/fashion-mnist.h5] [--threads 2] [--backend omp]

Needs Debian's python3-torch and python3-h5py (/usr/bin/python3, not the pyenv one). The
dataset file comes from `ompml-data import-idx /usr/share/datasets/fashion-mnist -o ...`.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np
import torch


def torch_epoch(data, threads, batch, seed):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    with h5py.File(data, "r") as f:
        x = np.array(f["train/images"]).reshape(len(f["train/labels"]), -1)
        y = np.array(f["train/labels"]).astype(np.int64)
    x = torch.from_numpy(x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else torch.from_numpy(x)
    y = torch.from_numpy(y)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(y))
    t0 = time.perf_counter()
    for s in range(0, len(y), batch):
        idx = order[s:s + batch]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return len(y) / seconds, seconds, loss.item()


def ompml_epoch(exe, data, threads, batch, backend):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.jsonl")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        cmd = [exe, "--data", data, "--layers", "784,512,256,10", "--activation", "relu", "--epochs", "1",
               "--batch", str(batch), "--optimizer", "adam", "--lr", "1e-3", "--seed", "1", "--backend", backend,
               "--metrics", metrics]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rec = json.loads(open(metrics).readline())
        return rec["samples_per_s"], rec["seconds"], rec["train_loss"], out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ompml-train", default="build/host/bin/ompml-train")
    ap.add_argument("--data", default="data/fashion-mnist.h5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--backend", default="omp")
    a = ap.parse_args()

    o_sps, o_s, o_loss, out = ompml_epoch(a.ompml_train, a.data, a.threads, a.batch, a.backend)
    t_sps, t_s, t_loss = torch_epoch(a.data, a.threads, a.batch, 1)
    print(out.strip())
    print(f"threads {a.threads}, batch {a.batch}, 1 epoch of {a.data}")
    print(f"  pytorch {torch.__version__} CPU : {t_sps:9.0f} samples/s ({t_s:.1f} s, last batch loss {t_loss:.3f})")
    print(f"  ompml-train ({a.backend})   : {o_sps:9.0f} samples/s ({o_s:.1f} s, epoch train loss {o_loss:.3f})")
    print(f"  ratio ompml / pytorch : {o_sps / t_sps:.2f}")


if __name__ == "__main__":
    main()
