#!/usr/bin/python3
"""Time of one training step: ompml-bench's train_step against PyTorch on the same device.

One step of the relu MLP (default 784-512-256-10) on a fixed random batch (default 128 x 784
float32, int64 labels) already resident on the device: zero_grad(set_to_none=True), forward,
cross-entropy, backward, torch.optim.Adam(lr=1e-3, PyTorch's defaults otherwise).step(). Each
side runs --warmup untimed steps, then --reps steps timed one at a time (wall clock around
step + torch.cuda.synchronize() here; around step + backend synchronize in ompml-bench);
min/avg/max in ms. speedup = torch min_ms / ompml min_ms; steps/s = 1000 / min_ms.

  python3 tools/torch_step.py [--device auto|cpu|cuda] [--threads T] [--backends omp]
        [--bench build/host/bin/ompml-bench] [--layers 784,512,256,10] [--batch 128]
        [--warmup 20] [--reps 200] [--csv]

ompml-bench runs as `--kernel train_step --backend B --layers L --m BATCH --csv` with
OMP_NUM_THREADS=T where --threads is given (always on --device cpu). Both sides must count the
same parameters, and every ompml backend must have run where torch runs: a backend on host
cores is never compared with torch on a GPU (nor a GPU backend with torch on the CPU); either
mismatch is a one-line error and exit 1. On the host, Debian's python3-torch
(/usr/bin/python3, not the pyenv one); on a GPU node, a python3 with CUDA PyTorch.
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import time

import torch

PROG = "torch_step"


def fail(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(1)


def pick_device(want):
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        fail(f"--device cuda, but this PyTorch ({torch.__version__}) sees no CUDA device")
    return want


def device_name(dev, threads):
    if dev == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({threads} threads)"


def torch_model(layers, dev):
    mods = []
    for i, (a, b) in enumerate(zip(layers, layers[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods).to(dev)


def torch_setup(layers, batch, dev):
    """The model, its Adam optimizer and a fixed batch, all on dev."""
    torch.manual_seed(7)
    model = torch_model(layers, dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, layers[0], dtype=torch.float32, device=dev)  # (B, IN) in [0, 1)
    y = torch.randint(0, layers[-1], (batch,), dtype=torch.int64, device=dev)  # (B)
    return model, opt, x, y


def torch_step_times(model, opt, x, y, dev, warmup, reps):
    """ms of each of reps whole training steps, timed one at a time after warmup untimed ones."""
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    sync()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        sync()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def run_bench(exe, backends, layers, batch, warmup, reps, threads):
    """ompml-bench's train_step rows {backend: row} and its devices {backend: device}."""
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        fail(f"ompml-bench not found or not executable: {exe} (build it, or pass --bench PATH)")
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [exe, "--kernel", "train_step", "--backend", backends, "--layers", ",".join(map(str, layers)),
           "--m", str(batch), "--warmup-runs", str(warmup), "--reps", str(reps), "--csv"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or ["no message"])[-1]
        fail(f"ompml-bench exited {p.returncode}: {why}")
    devices, lines = {}, []
    for line in p.stdout.splitlines():
        if line.startswith("# device:"):
            for part in line[len("# device:"):].strip().split("; "):
                name, _, dev = part.partition(" = ")
                devices[name] = dev
        elif line and not line.startswith("#"):
            lines.append(line)
    rows = {r["backend"]: r for r in csv.DictReader(io.StringIO("\n".join(lines))) if r["kernel"] == "train_step"}
    for b in backends.split(","):
        if b not in rows:
            fail(f"ompml-bench printed no train_step row for backend '{b}'")
    return rows, devices


def check_same_place(dev, devices):
    """A host fallback is never compared with a GPU, nor a GPU backend with the CPU."""
    for name, where in devices.items():
        on_gpu = where.endswith("[GPU]")  # ref and host backends: [host cores, not a GPU] or no tag
        if dev == "cuda" and not on_gpu:
            fail(f"backend '{name}' ran on the host ({where}) but torch runs on the GPU: not comparable")
        if dev == "cpu" and on_gpu:
            fail(f"backend '{name}' ran on a GPU ({where}) but torch runs on the CPU: not comparable")


def stats(ms):
    return min(ms), sum(ms) / len(ms), max(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads and OMP_NUM_THREADS for ompml-bench (default on cpu: all cores)")
    ap.add_argument("--layers", default="784,512,256,10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--bench", default="build/host/bin/ompml-bench")
    ap.add_argument("--backends", default="omp", help="comma list passed to ompml-bench --backend")
    ap.add_argument("--csv", action="store_true", help="print CSV rows instead of a table")
    a = ap.parse_args()
    try:
        layers = [int(w) for w in a.layers.split(",")]
    except ValueError:
        fail(f"--layers must be a comma list of widths, got '{a.layers}'")
    if len(layers) < 2 or min(layers) < 1 or a.batch < 1 or a.reps < 1 or a.warmup < 0:
        fail("need at least two positive --layers widths, --batch >= 1, --reps >= 1, --warmup >= 0")

    dev = pick_device(a.device)
    threads = a.threads
    if dev == "cpu":
        threads = threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(threads)
    rows, devices = run_bench(a.bench, a.backends, layers, a.batch, a.warmup, a.reps, threads)
    check_same_place(dev, devices)
    model, opt, x, y = torch_setup(layers, a.batch, dev)
    params = sum(p.numel() for p in model.parameters())
    for b, r in rows.items():
        if int(r["n"]) != params or int(r["m"]) != a.batch:
            fail(f"ompml-bench's {b} step has {r['n']} parameters, batch {r['m']}; torch's has {params}, batch "
                 f"{a.batch}: not the same step")
    ms = torch_step_times(model, opt, x, y, dev, a.warmup, a.reps)

    t_min, t_avg, t_max = stats(ms)
    table = [("torch", device_name(dev, threads), t_min, t_avg, t_max)]
    for b, r in rows.items():
        table.append((f"ompml-{b}", devices.get(b, "?"), float(r["min_ms"]), float(r["avg_ms"]), float(r["max_ms"])))

    shape = "-".join(map(str, layers))
    if a.csv:
        print(f"# torch {torch.__version__}; ompml-bench device: "
              + "; ".join(f"{n} = {d}" for n, d in devices.items()))
        print(f"# {shape} relu MLP, Adam lr 1e-3, {a.warmup} warm-up steps, {a.reps} timed")
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["who", "device", "batch", "params", "min_ms", "avg_ms", "max_ms", "steps_per_s",
                    "speedup_vs_torch"])
        for who, where, lo, avg, hi in table:
            w.writerow([who, where, a.batch, params, f"{lo:.4f}", f"{avg:.4f}", f"{hi:.4f}", f"{1e3 / lo:.1f}",
                        f"{t_min / lo:.3f}"])
        return
    print(f"one training step: {shape} relu MLP ({params} parameters), batch {a.batch}, cross-entropy, Adam lr 1e-3")
    print(f"torch {torch.__version__} on {device_name(dev, threads)}"
          + (f" (TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'})" if dev == "cuda" else ""))
    for n, d in devices.items():
        print(f"ompml-bench {n}: {d}")
    print(f"timing: {a.warmup} warm-up steps, {a.reps} timed one at a time (synchronised); "
          f"speedup = torch min / this min")
    print(f"\n{'who':<12} {'min ms':>9} {'avg ms':>9} {'max ms':>9} {'steps/s':>9} {'x torch':>8}  device")
    for who, where, lo, avg, hi in table:
        print(f"{who:<12} {lo:9.4f} {avg:9.4f} {hi:9.4f} {1e3 / lo:9.1f} {t_min / lo:8.2f}  {where}")


if __name__ == "__main__":
    main()
