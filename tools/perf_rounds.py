#!/usr/bin/python3
"""The rounds of tools/perf-compare.sh: runs the same workloads with two builds, alternating the
order round by round, and prints HEAD/BASE time ratios with a verdict.

    perf_rounds.py --rounds 5 --threshold 1.25 --out DIR --data F.h5 base=NAME=BIN head=NAME=BIN

Every figure is a time (ms): a bench row's min_ms, or ms per 1000 training samples. A row's
ratio in a round is head / base; the verdict takes the median of those over the rounds, so one
disturbed round cannot fail the gate and a real slowdown shows in every round.
"""
import argparse
import csv
import io
import os
import re
import statistics
import subprocess
import sys

# The MLP's gemm shapes (784-512-256-10 at batch 128): forward of the two big layers, and the
# weight gradients of the first (M, N, K).
MLP_SHAPES = [(128, 512, 784), (128, 256, 512), (512, 784, 128), (784, 512, 128)]
TRAIN = ["--layers", "784,512,256,10", "--activation", "relu", "--epochs", "1", "--batch", "128",
         "--optimizer", "adam", "--lr", "1e-3", "--seed", "1", "--backend", "omp"]


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"perf_rounds.py: {' '.join(argv)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return p.stdout


def bench_rows(text, suffix=""):
    """{row: min_ms} of the omp rows of a bench CSV (anchors are not the project's code)."""
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    rows = {}
    for r in csv.DictReader(io.StringIO("\n".join(lines))):
        if r["backend"] != "omp":
            continue
        name = r["kernel"]
        if name.startswith("gemm"):
            name += f" {r['m']}x{r['n']}x{r['k']}"
        rows[name + suffix] = float(r["min_ms"])
    return rows


class Build:
    def __init__(self, spec):
        self.role, self.name, self.bin = spec.split("=", 2)
        self.has_bf16 = "--precision" in run([self.exe("ompml-bench"), "--help"])

    def exe(self, prog):
        return os.path.join(self.bin, prog)

    def bench(self, *args):
        return bench_rows(run([self.exe("ompml-bench"), "--backend", "omp", "--csv", *args]))

    def train(self, data, precision):
        argv = [self.exe("ompml-train"), "--data", data, *TRAIN]
        if precision != "fp32":
            argv += ["--precision", precision]
        out = run(argv)
        m = re.search(r"^epoch 1/1 .* ([0-9.]+) samples/s", out, re.M)
        if not m:
            sys.exit(f"perf_rounds.py: no 'epoch 1/1 ... samples/s' line from {' '.join(argv)}:\n{out}")
        return {f"train {precision} (ms per 1000 samples)": 1e6 / float(m.group(1))}

    def round(self, data):
        """One round of every workload this build has: {row: ms}."""
        rows = self.bench("--kernel", "all")
        precisions = ["fp32", "bf16"] if self.has_bf16 else ["fp32"]
        for prec in precisions:
            extra = [] if prec == "fp32" else ["--precision", "bf16"]
            if prec == "bf16":
                rows.update(self.bench("--kernel", "gemm,train_step", *extra))
            for m, n, k in MLP_SHAPES:
                rows.update(self.bench("--kernel", "gemm", "--m", str(m), "--n", str(n), "--k", str(k), *extra))
            rows.update(self.train(data, prec))
        return rows


def cpu_line():
    info = open("/proc/cpuinfo").read()
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.*)$", info, re.M).group(1).split())
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model.group(1) if model else 'unknown CPU'}, {os.cpu_count()} CPUs, {' '.join(isa) or 'no AVX-512'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=1.25)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("builds", nargs=2)
    a = ap.parse_args()
    base, head = Build(a.builds[0]), Build(a.builds[1])
    print(f"# perf-compare: base {base.name}, head {head.name}, {a.rounds} rounds, on {cpu_line()}", flush=True)
    times = {base.role: [], head.role: []}
    for r in range(a.rounds):
        order = (base, head) if r % 2 == 0 else (head, base)
        for b in order:
            times[b.role].append(b.round(a.data))
        print(f"# round {r + 1}/{a.rounds} done", flush=True)

    with open(os.path.join(a.out, "rounds.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["# cpu", cpu_line(), "base", base.name, "head", head.name])
        w.writerow(["round", "build", "row", "ms"])
        for role, b in ((base.role, base), (head.role, head)):
            for r, rows in enumerate(times[role]):
                for row, ms in rows.items():
                    w.writerow([r + 1, b.name, row, f"{ms:.6g}"])

    names = list(dict.fromkeys([*times[base.role][0], *times[head.role][0]]))
    failed = []
    print(f"{'row':<40} {'base ms':>10} {'head ms':>10} {'head/base':>10}  range")
    for row in names:
        in_base, in_head = row in times[base.role][0], row in times[head.role][0]
        if not (in_base and in_head):
            print(f"{row:<40} {'(new)' if in_head else '(gone)':>10}")
            continue
        b = [t[row] for t in times[base.role]]
        h = [t[row] for t in times[head.role]]
        ratios = [y / x for x, y in zip(b, h)]
        med = statistics.median(ratios)
        flag = "  <-- slower" if med >= a.threshold else ""
        if med >= a.threshold:
            failed.append(row)
        print(f"{row:<40} {statistics.median(b):>10.4g} {statistics.median(h):>10.4g} {med:>10.3f}  "
              f"{min(ratios):.3f}-{max(ratios):.3f}{flag}")
    worst = max((statistics.median([h[r] / b[r] for b, h in zip(times[base.role], times[head.role])]), r)
                for r in names if r in times[base.role][0] and r in times[head.role][0])
    print(f"worst row: {worst[1]} at {worst[0]:.3f}x")
    if failed:
        print(f"verdict: FAIL: {len(failed)} row(s) >= {a.threshold}x slower in the median of {a.rounds} rounds: "
              + ", ".join(failed))
        return 1
    print(f"verdict: PASS: no row >= {a.threshold}x slower in the median of {a.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
