#!/usr/bin/python3
"""The GPU checks of directives against CUDA in one run on one GPU, with a summary of the targets.

    python3 tools/gpu_report.py [--bin build/gpu/bin] [--out runs/gpu-report] [--quick]

--bin holds ompml-bench and test_kernels of a gpu build: build/gpu/bin, or, on a node without the
toolchain, the runtime bundle's openmpi/bin (scripts that start each program through run.sh).
Runs, keeping every output in --out (each step's stderr beside it, in <step>.err):
  device.txt          nvidia-smi -L
  test_kernels_gpu.log  test_kernels --gpu-only with OMP_TARGET_OFFLOAD=MANDATORY: the kernel suite
                      on the GPU backends (omp and cuda) against the reference (a silent host
                      fallback cannot pass)
  bench-default.csv   ompml-bench --compare omp,cuda --kernel all --csv (default sizes)
  gemm-4096.csv       gemm 4096^3 fp32: omp, cuda and the cuBLAS anchor (--no-check: the
                      sequential reference would take many minutes at this size; the default
                      sizes above are checked, and max_diff still compares omp with cuda)
  bandwidth.csv       the bandwidth-bound kernels on 2^27-element arrays (far beyond L2)
  bf16.csv            --precision bf16: the bf16 gemm (default size and 4096^3, --no-check there)
                      and the bf16 training step (train_step), omp against cuda
  torch-step.csv      tools/torch_step.py --device cuda: one 784-512-256-10 training step at
                      batch 128, omp and cuda backends against PyTorch on the same GPU
  summary.md          the targets, each with the measured figure and PASS or FAIL
Targets: bandwidth-bound kernels omp/cuda >= 0.9; gemm 4096^3 omp >= 50% and cuda >= 70% of
cuBLAS; the omp training step faster than PyTorch's. Exit status 0 when every step ran (a
missed target is reported in summary.md, not as an error); 1 when a step failed.
--quick: small sizes and few repetitions (checks the plumbing, not the speed).
The last step needs a python3 with CUDA PyTorch (--python); without one it fails like any step.
"""
import argparse
import csv
import io
import os
import subprocess
import sys

BANDWIDTH_KERNELS = ["fill", "scale", "normalize_u8", "sum_squares", "activation_relu", "activation_gelu",
                     "sgd", "adam"]
HERE = os.path.dirname(os.path.abspath(__file__))


def die(msg):
    print(f"gpu_report.py: {msg}", file=sys.stderr)
    sys.exit(1)


def step(name, argv, out_path, env=None):
    """Runs argv, writes its stdout to out_path and its stderr to out_path's .err; returns
    whether it exited 0."""
    print(f"gpu_report.py: {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    except OSError as e:
        p = subprocess.CompletedProcess(argv, 127, "", f"gpu_report.py: cannot run {argv[0]}: {e}\n")
    err_path = os.path.splitext(out_path)[0] + ".err"
    open(out_path, "w").write(p.stdout)
    open(err_path, "w").write(p.stderr)
    if p.returncode != 0:
        print(f"gpu_report.py: {name} failed (exit {p.returncode}); see {out_path} and {err_path}", file=sys.stderr)
    return p.returncode == 0


def bench_rows(text):
    """ompml-bench --csv output -> (device line, rows as dicts)."""
    device = next((ln[len("# device: "):] for ln in text.splitlines() if ln.startswith("# device: ")), "")
    body = "\n".join(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    return device, list(csv.DictReader(io.StringIO(body)))


def row(rows, kernel, backend):
    return next((r for r in rows if r["kernel"] == kernel and r["backend"] == backend), None)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def summarise(out, results):
    lines = ["# GPU report", ""]
    dev = open(os.path.join(out, "device.txt")).read().strip() if results.get("device") else ""
    lines += [f"Device: {dev or 'unknown (nvidia-smi -L failed: see device.err)'}", ""]
    lines += ["| step | ran |", "|---|---|"] + [f"| {k} | {'yes' if v else 'FAILED'} |" for k, v in results.items()]

    if results.get("bandwidth"):
        device, rows = bench_rows(open(os.path.join(out, "bandwidth.csv")).read())
        lines += ["", "## Bandwidth-bound kernels: omp/cuda >= 0.9", "", f"Devices: {device}", "",
                  "| kernel | omp GB/s | cuda GB/s | omp % peak | cuda % peak | omp/cuda | max diff | target |",
                  "|---|---|---|---|---|---|---|---|"]
        for k in BANDWIDTH_KERNELS:
            o, c = row(rows, k, "omp"), row(rows, k, "cuda")
            if o and c:
                ratio = float(o["ratio"])
                lines.append(f"| {k} | {float(o['gbs']):.0f} | {float(c['gbs']):.0f} | {o['peak_pct']} | "
                             f"{c['peak_pct']} | {ratio:.2f} | {o['max_diff']} | {verdict(ratio >= 0.9)} |")
    if results.get("gemm-4096"):
        device, rows = bench_rows(open(os.path.join(out, "gemm-4096.csv")).read())
        o, c, b = row(rows, "gemm", "omp"), row(rows, "gemm", "cuda"), row(rows, "gemm", "cublas")
        lines += ["", "## gemm 4096^3 fp32: omp >= 50%, cuda >= 70% of cuBLAS", ""]
        if o and c and b:
            ob, cb = float(o["gflops"]) / float(b["gflops"]), float(c["gflops"]) / float(b["gflops"])
            lines += ["| backend | GFLOP/s | % of FP32 peak | of cuBLAS | target |", "|---|---|---|---|---|",
                      f"| cublas | {float(b['gflops']):.0f} | {b['peak_pct']} | 100% | |",
                      f"| omp | {float(o['gflops']):.0f} | {o['peak_pct']} | {100 * ob:.0f}% | {verdict(ob >= 0.5)} |",
                      f"| cuda | {float(c['gflops']):.0f} | {c['peak_pct']} | {100 * cb:.0f}% | {verdict(cb >= 0.7)} |"]
        else:
            lines.append("cuBLAS anchor or a backend row missing: see gemm-4096.csv")
    for name in ("bf16", "bf16-gemm-4096"):
        if not results.get(name):
            continue
        device, rows = bench_rows(open(os.path.join(out, f"{name}.csv")).read())
        lines += ["", f"## {name}: omp against cuda in bf16 (no target yet; the first figures)", "",
                  "| kernel | m x n x k | omp GFLOP/s | cuda GFLOP/s | omp/cuda (speed) | max diff |",
                  "|---|---|---|---|---|---|"]
        for k in ("gemm_bf16", "train_step_bf16"):
            o, c = row(rows, k, "omp"), row(rows, k, "cuda")
            if o and c:
                lines.append(f"| {k} | {o['m']} x {o['n']} x {o['k']} | {float(o['gflops']):.0f} | "
                             f"{float(c['gflops']):.0f} | {o['ratio']} | {o['max_diff']} |")
    if results.get("torch-step"):
        text = open(os.path.join(out, "torch-step.csv")).read()
        rows = list(csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines() if ln and ln[0] != "#"))))
        lines += ["", "## One training step, 784-512-256-10, batch 128: omp faster than PyTorch", "",
                  "| who | device | min ms | speedup vs PyTorch | target |", "|---|---|---|---|---|"]
        for r in rows:
            is_omp = r["who"].endswith("omp")
            target = verdict(float(r["speedup_vs_torch"]) > 1.0) if is_omp else ""
            lines.append(f"| {r['who']} | {r['device']} | {float(r['min_ms']):.4f} | {r['speedup_vs_torch']} | {target} |")
    open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/gpu/bin")
    ap.add_argument("--out", default="runs/gpu-report")
    ap.add_argument("--python", default=sys.executable, help="python with CUDA PyTorch for torch_step.py")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    bench, tests = os.path.join(a.bin, "ompml-bench"), os.path.join(a.bin, "test_kernels")
    for p in (bench, tests):
        if not os.access(p, os.X_OK):
            die(f"{p} not found or not executable (--bin: a gpu build's bin/ or a bundle's openmpi/bin)")
    os.makedirs(a.out, exist_ok=True)
    mandatory = {"OMP_TARGET_OFFLOAD": "MANDATORY"}
    reps = ["--warmup-runs", "1", "--reps", "3"] if a.quick else ["--warmup-runs", "5", "--reps", "30"]
    gemm = ["--m", "256", "--n", "256", "--k", "256"] if a.quick else ["--m", "4096", "--n", "4096", "--k", "4096"]
    length = str(1 << 16 if a.quick else 1 << 27)
    cmp = [bench, "--compare", "omp,cuda", "--csv"]

    torch_reps = ["--warmup", "2", "--reps", "5"] if a.quick else []
    steps = [  # (name, command, output file, environment)
        ("device", ["nvidia-smi", "-L"], "device.txt", {}),
        ("test_kernels_gpu", [tests, "--gpu-only"], "test_kernels_gpu.log", mandatory),
        ("bench-default", cmp + ["--kernel", "all"] + reps, "bench-default.csv", mandatory),
        ("gemm-4096", cmp + ["--kernel", "gemm", "--no-check"] + gemm + reps, "gemm-4096.csv", mandatory),
        ("bandwidth", cmp + ["--kernel", ",".join(BANDWIDTH_KERNELS), "--len", length] + reps, "bandwidth.csv",
         mandatory),
        ("bf16", cmp + ["--kernel", "gemm,train_step", "--precision", "bf16"] + reps, "bf16.csv", mandatory),
        ("bf16-gemm-4096", cmp + ["--kernel", "gemm", "--precision", "bf16", "--no-check"] + gemm + reps,
         "bf16-gemm-4096.csv", mandatory),
        ("torch-step", [a.python, os.path.join(HERE, "torch_step.py"), "--device", "cuda", "--bench", bench,
                        "--backends", "omp,cuda", "--csv"] + torch_reps, "torch-step.csv", mandatory),
    ]
    results = {name: step(name, argv, os.path.join(a.out, out), env) for name, argv, out, env in steps}
    print(summarise(a.out, results))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
