#!/usr/bin/python3
"""One CPU's section of docs/results/host.md, measured on this machine in one run.

    /usr/bin/python3 tools/host_report.py [--bin build/host/bin] [--data data/fashion-mnist.h5]
        [--rounds 3] [--out runs/host-report]

Measures, in alternating rounds where two things are compared:
  - the CPU: vendor, model, the ISA flags the gemm cares about, AMX or not;
  - the omp gemm at 1024^3 and the MLP's shapes (784-512-256-10 at batch 128: 128x512x784,
    128x256x512, 512x784x128, 784x512x128), fp32, and bf16 on every host path this CPU has
    (OMPML_HOST_GEMM), timed alone (`--no-anchors`: OpenBLAS's workers spin after each call and
    would share the cores with the runs they alternate with; measured on the Intel Xeon, that
    cost the omp gemm's best run 5-10%), against the CPU's peak multiply-add rates (register-only
    loops, measured by ompml-bench in the same run) and OpenBLAS's sgemm at its best
    (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the anchor's command alone; its core is
    named), from runs of the two alternated (ompml-bench has no anchor-only mode; the omp team's
    idle threads there did not slow OpenBLAS's best run: 0.397-0.408 ms at 128x512x784, against
    0.404-0.409 with OMP_WAIT_POLICY=passive);
  - quick-start training (784-512-256-10, batch 128, Adam), samples/s of the second epoch and the
    best of epochs 2 to --epochs (default 5), fp32 and bf16, against PyTorch on the same model and
    data (tools/torch_speed.py, its BLAS at its best and named);
  - the gemm-bound limit: 6 x params FLOP per sample at the fp32 gemm's aggregate GFLOP/s over
    the four MLP shapes (each the best of 200 runs), and the fp32 training rate as a share of it,
    best epoch against best gemm runs, and epoch 2's; epoch 2's also against the limit at the
    gemm's mean run in the same runs (like for like: an epoch's rate is a mean over its steps,
    and on a shared VM a gemm's mean run is 1.1-1.7x its best); plus the step's phases from a
    trace (tools/trace_report.py).
Prints a markdown section (the figures, the commands, the machine) and writes the raw CSV to --out.
"""
import argparse
import csv
import io
import os
import re
import statistics
import subprocess
import sys

MLP_SHAPES = [(128, 512, 784), (128, 256, 512), (512, 784, 128), (784, 512, 128)]
SHAPES = [(1024, 1024, 1024)] + MLP_SHAPES
TRAIN = ["--layers", "784,512,256,10", "--activation", "relu", "--batch", "128", "--optimizer", "adam",
         "--lr", "1e-3", "--seed", "1", "--backend", "omp"]
PARAMS = 535818  # 784-512-256-10


def best_env():
    """The environment for anchors at their best: OpenBLAS picks its own core."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run(argv, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"host_report.py: {' '.join(argv)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return p.stdout


def cpu():
    info = open("/proc/cpuinfo").read()
    field = lambda k: (re.search(rf"^{k}\s*:\s*(.*)$", info, re.M) or [None, "?"])[1]
    flags = set(field("flags").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16") if f in flags]
    return {"vendor": field("vendor_id"), "model": field("model name"), "family": field("cpu family"),
            "cpus": os.cpu_count(), "isa": " ".join(isa), "amx": "amx_bf16" in flags}


def bench_rows(bin_dir, m, n, k, precision, path, *extra):
    """(rows, text) of one ompml-bench gemm run of 200 timed runs per row: a min over a few short
    runs may see only a descheduled second vCPU."""
    env = best_env()
    if path:
        env["OMPML_HOST_GEMM"] = path
    argv = [os.path.join(bin_dir, "ompml-bench"), "--kernel", "gemm", "--m", str(m), "--n", str(n), "--k", str(k),
            "--precision", precision, "--reps", "200", "--csv", *extra]
    out = run(argv, env)
    rows = [r for r in csv.DictReader(io.StringIO("\n".join(l for l in out.splitlines() if not l.startswith("#"))))]
    return rows, out


def omp_gemm(bin_dir, m, n, k, precision, path=None):
    """(best run's GFLOP/s, mean run's GFLOP/s, host peak line) of the omp gemm timed alone."""
    rows, out = bench_rows(bin_dir, m, n, k, precision, path, "--no-anchors")
    peak = re.search(r"^# host_peak: (.*)$", out, re.M)
    omp = next(r for r in rows if r["backend"] == "omp")
    return float(omp["gflops"]), float(omp["flops"]) / (float(omp["avg_ms"]) * 1e6), peak.group(1) if peak else "?"


def openblas_gemm(bin_dir, m, n, k):
    """(GFLOP/s of the OpenBLAS anchor's best run or None, its core) of one fp32 gemm, from runs
    alternated with the omp gemm's (whose times here are not used)."""
    rows, out = bench_rows(bin_dir, m, n, k, "fp32", None, "--no-check")
    core = re.search(r"^# openblas: core=(\S+)", out, re.M)
    blas = next((float(r["gflops"]) for r in rows if r["backend"].startswith("openblas")), None)
    return blas, core.group(1) if core else "none"


def train_rate(bin_dir, data, precision, epochs):
    """Samples/s of the quick-start model over `epochs` epochs: (the second epoch's, the best of
    epochs 2 to `epochs`). The best is the figure to set beside the gemm's, itself the best of 200
    runs: on a shared VM the same binary's epochs differ by up to 1.3x from one minute to the next."""
    argv = [os.path.join(bin_dir, "ompml-train"), "--data", data, *TRAIN, "--epochs", str(epochs), "--precision",
            precision]
    out = run(argv)
    rates = {int(e): float(x) for e, x in re.findall(rf"^epoch ([0-9]+)/{epochs} .* ([0-9.]+) samples/s", out, re.M)}
    rates.pop(1, None)  # the first epoch pays for first-touch allocations and cold caches
    if sorted(rates) != list(range(2, epochs + 1)):
        sys.exit(f"host_report.py: no 'epoch N/{epochs} ... samples/s' line for every epoch from 2:\n{out}")
    return rates[2], max(rates.values())


def torch_rate(bin_dir, data):
    out = run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "torch_speed.py"), "--ompml-train",
               os.path.join(bin_dir, "ompml-train"), "--data", data], best_env())
    m = re.search(r"pytorch (\S+) CPU : +([0-9.]+) samples/s", out)
    blas = re.search(r"openblas: core (\S+)", out)
    return float(m.group(2)), m.group(1), blas.group(1) if blas else "?"


def phases(bin_dir, data, out_dir):
    trace = os.path.join(out_dir, "quickstart-fp32.json")
    run([os.path.join(bin_dir, "ompml-train"), "--data", data, *TRAIN, "--epochs", "1", "--max-steps", "400",
         "--trace", trace, "--trace-steps", "101:400"])
    return run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "trace_report.py"), trace])


def med(v):
    return statistics.median(v) if v else float("nan")


def span(v):
    return f"{min(v):.0f}-{max(v):.0f}" if v else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/host/bin")
    ap.add_argument("--data", default="data/fashion-mnist.h5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs per run (>= 2)")
    ap.add_argument("--out", default="runs/host-report")
    a = ap.parse_args()
    if a.epochs < 2:
        ap.error(f"--epochs {a.epochs}: epoch 2 is the one reported, so at least 2")
    os.makedirs(a.out, exist_ok=True)
    c = cpu()
    paths = [p for p in ("amx", "avx512bf16", "fp32")
             if subprocess.run([os.path.join(a.bin, "ompml-bench"), "--kernel", "gemm", "--m", "8", "--n", "8", "--k",
                                "8", "--precision", "bf16", "--reps", "1", "--warmup", "0", "--csv"],
                               env={**os.environ, "OMPML_HOST_GEMM": p}, capture_output=True).returncode == 0]
    g = {}  # (shape, what) -> [GFLOP/s per round]
    peaks = []  # the fp32 FMA peak of every bench run: the CPU's is the highest (a run can lose a vCPU)
    core, peak = "?", "?"
    train = {"fp32": [], "bf16": [], "torch": []}  # epoch 2 (torch: its own measure)
    best = {"fp32": [], "bf16": []}  # the best of epochs 2 to a.epochs
    torch_ver, torch_core = "?", "?"
    for r in range(a.rounds):
        for shape in SHAPES:
            omp, mean, peak = omp_gemm(a.bin, *shape, "fp32")
            g.setdefault((shape, "fp32"), []).append(omp)
            g.setdefault((shape, "fp32 mean run"), []).append(mean)
            peaks.append(float(re.search(r"fp32 FMA ([0-9.]+)", peak).group(1)))
            blas, core = openblas_gemm(a.bin, *shape)
            if blas:
                g.setdefault((shape, "openblas"), []).append(blas)
            for p in paths:
                g.setdefault((shape, "bf16 " + p), []).append(omp_gemm(a.bin, *shape, "bf16", p)[0])
        order = ["fp32", "bf16", "torch"] if r % 2 == 0 else ["torch", "bf16", "fp32"]
        for w in order:
            if w == "torch":
                sps, torch_ver, torch_core = torch_rate(a.bin, a.data)
                train["torch"].append(sps)
            else:
                second, top = train_rate(a.bin, a.data, w, a.epochs)
                train[w].append(second)
                best[w].append(top)
        print(f"# round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)

    with open(os.path.join(a.out, "host-report.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["what", "m", "n", "k", "round", "value"])
        for (shape, what), v in g.items():
            for i, x in enumerate(v):
                w.writerow([what + " GFLOP/s", *shape, i + 1, f"{x:.4g}"])
        for what, v in list(train.items()) + [(k + " best epoch", v) for k, v in best.items()]:
            for i, x in enumerate(v):
                w.writerow([what + " samples/s", "", "", "", i + 1, f"{x:.6g}"])

    # The fp32 gemm's aggregate rate over the four MLP shapes, per round: flops / time; from each
    # shape's best run (the limit), and from its mean run (the same statistic as an epoch's rate).
    def aggregate(what):
        out = []
        for r in range(a.rounds):
            t = sum(2.0 * m * n * k / (g[((m, n, k), what)][r] * 1e9) for m, n, k in MLP_SHAPES)
            out.append(sum(2.0 * m * n * k for m, n, k in MLP_SHAPES) / t / 1e9)
        return out

    agg, agg_mean = aggregate("fp32"), aggregate("fp32 mean run")
    limit = [x * 1e9 / (6 * PARAMS) for x in agg]
    limit_mean = [x * 1e9 / (6 * PARAMS) for x in agg_mean]
    share = [s / l for s, l in zip(train["fp32"], limit)]
    share_best = [s / l for s, l in zip(best["fp32"], limit)]
    share_mean = [s / l for s, l in zip(train["fp32"], limit_mean)]

    print(f"## {c['model']} ({c['vendor']}, family {c['family']}), {c['cpus']} CPUs")
    print()
    print(f"- ISA: {c['isa']}; AMX: {'yes' if c['amx'] else 'no'}. Host bf16 gemm paths here: {', '.join(paths)}.")
    print(f"- Peaks (ompml-bench, register-only loops): {peak}; the fp32 peak taken is the highest of "
          f"{len(peaks)} runs, {max(peaks):.0f} GFLOP/s (lowest {min(peaks):.0f}).")
    print(f"- The omp gemm timed alone (`--no-anchors`), best of 200 runs; OpenBLAS at its best in runs alternated with it: "
          f"core {core}; PyTorch {torch_ver} through OpenBLAS core {torch_core}.")
    print(f"- {a.rounds} rounds, medians (range); commands: `python3 tools/host_report.py`.")
    print()
    heads = ["fp32", "openblas"] + ["bf16 " + p for p in paths]
    print("| shape | " + " | ".join(h + " GFLOP/s" for h in heads) + " | fp32 % of peak | bf16 / fp32 |")
    print("| --- |" + " ---: |" * (len(heads) + 2))
    for shape in SHAPES:
        cells = [f"{med(g.get((shape, h), [])):.0f} ({span(g.get((shape, h), []))})" for h in heads]
        cells.append(f"{100 * med(g[(shape, 'fp32')]) / max(peaks):.0f}")
        best16 = max((med(g[(shape, 'bf16 ' + p)]) for p in paths), default=float("nan"))
        print(f"| {'x'.join(map(str, shape))} | " + " | ".join(cells) + f" | {best16 / med(g[(shape, 'fp32')]):.2f} |")
    print()
    print(f"| training (784-512-256-10, batch 128) | samples/s, epoch 2 | best of epochs 2-{a.epochs} |")
    print("| --- | ---: | ---: |")
    for w, label in (("fp32", "ompml fp32"), ("bf16", "ompml bf16"), ("torch", f"PyTorch {torch_ver} fp32")):
        top = f"{med(best[w]):.0f} ({span(best[w])})" if w in best else "-"
        print(f"| {label} | {med(train[w]):.0f} ({span(train[w])}) | {top} |")
    print(f"| bf16 / fp32 | {med(train['bf16']) / med(train['fp32']):.2f} | "
          f"{med(best['bf16']) / med(best['fp32']):.2f} |")
    print(f"| ompml fp32 / PyTorch | {med(train['fp32']) / med(train['torch']):.2f} | |")
    print()
    print(f"Gemm-bound limit: the fp32 gemm's aggregate rate over the MLP shapes, {med(agg):.0f} GFLOP/s, "
          f"at 6 x {PARAMS} FLOP per sample: {med(limit):.0f} samples/s; fp32 training reaches "
          f"{med(share_best):.2f} of it in its best epoch ({min(share_best):.2f}-{max(share_best):.2f}), "
          f"{med(share):.2f} in epoch 2 ({min(share):.2f}-{max(share):.2f}). Like for like, epoch 2's rate (a mean "
          f"over its steps) against the gemm's mean run ({med(agg_mean):.0f} GFLOP/s, "
          f"{med(limit_mean):.0f} samples/s): {med(share_mean):.2f} ({min(share_mean):.2f}-{max(share_mean):.2f}).")
    print()
    print("Phases of the fp32 step (steps 101-400 of a trace):")
    print()
    print("```")
    print(phases(a.bin, a.data, a.out).strip())
    print("```")


if __name__ == "__main__":
    main()
