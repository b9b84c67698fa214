#!/usr/bin/python3
"""scaling.py: analysis and plot of the scaling study (tools/scaling.sh writes its input).

    /usr/bin/python3 tools/scaling.py RUN_DIR/scaling.csv --out RUN_DIR [--title TEXT]

Reads ompml-scale CSV rows (one per mode, layers, ranks, threads) and writes
  results.csv  the rows plus cores, speedup and efficiency
  table.md     the same as a Markdown table (for docs/results/scaling.md)
  scaling.png  per mode (rows) and width (columns): time per step as stacked compute and
               communication bars per configuration, the plain MPI_Allreduce of the same
               bytes as a marker; last column: parallel efficiency against parameter count.

Efficiency compares throughput per core with the 1-core point of the same mode and model:
  eff = (samples_per_s / cores) / (samples_per_s_1 / cores_1),  cores = ranks x threads
which is t1 / tP for weak scaling (P times the rows in the same time is ideal) and
t1 / (P tP) for strong scaling (the same rows in 1/P of the time is ideal). The baseline is
the point with the fewest cores (1x1 locally; the smallest node count under Slurm).
Needs Debian's python3-matplotlib: run with /usr/bin/python3, not a pyenv python.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    num = ("params ranks threads global_batch rank_batch steps step_ms step_min_ms compute_ms comm_ms "
           "wait_ms allreduce_ms allreduce_min_ms samples_per_s buckets bucket_mb").split()
    for r in rows:
        for k in num:
            r[k] = float(r[k])
        r["cores"] = r["ranks"] * r["threads"]
        r["config"] = "%dx%d" % (r["ranks"], r["threads"])
    return rows


def add_efficiency(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["mode"], r["layers"]), []).append(r)
    for g in groups.values():
        base = min(g, key=lambda r: (r["cores"], r["ranks"]))
        per_core = base["samples_per_s"] / base["cores"]
        for r in g:
            r["speedup"] = r["samples_per_s"] / base["samples_per_s"]
            r["efficiency"] = (r["samples_per_s"] / r["cores"]) / per_core
            r["baseline"] = base["config"]
    return groups


def write_results(rows, out):
    cols = ["mode", "layers", "params", "ranks", "threads", "cores", "global_batch", "step_ms", "compute_ms",
            "comm_ms", "wait_ms", "allreduce_ms", "samples_per_s", "speedup", "efficiency", "baseline"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([("%g" % r[c]) if isinstance(r[c], float) else r[c] for c in cols])
    lines = ["| mode | layers | params | ranks x threads | global batch | step ms | compute ms | comm ms "
             "(exposed wait) | plain allreduce ms | samples/s | speedup | efficiency |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %s | %.2fM | %s | %d | %.2f | %.2f | %.2f (%.2f) | %.2f | %.0f | %.2f | %.0f%% |" % (
            r["mode"], r["layers"], r["params"] / 1e6, r["config"], r["global_batch"], r["step_ms"],
            r["compute_ms"], r["comm_ms"], r["wait_ms"], r["allreduce_ms"], r["samples_per_s"], r["speedup"],
            100 * r["efficiency"]))
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(rows, out, title):
    modes = [m for m in ("weak", "strong") if any(r["mode"] == m for r in rows)]
    layers = sorted({r["layers"] for r in rows}, key=lambda l: next(r["params"] for r in rows if r["layers"] == l))
    configs = sorted({r["config"] for r in rows}, key=lambda c: (int(c.split("x")[0]) * int(c.split("x")[1]), -int(c.split("x")[0])))
    ncol = len(layers) + 1
    fig, axes = plt.subplots(len(modes), ncol, figsize=(3.1 * ncol + 1, 3.3 * len(modes) + 0.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, mode in enumerate(modes):
        for j, lay in enumerate(layers):
            ax = axes[i][j]
            pts = {r["config"]: r for r in rows if r["mode"] == mode and r["layers"] == lay}
            xs = [c for c in configs if c in pts]
            comp = [pts[c]["compute_ms"] for c in xs]
            comm = [pts[c]["comm_ms"] for c in xs]
            ax.bar(xs, comp, color="#4c72b0", label="compute")
            ax.bar(xs, comm, bottom=comp, color="#dd8452", label="communication")
            ar = [(c, pts[c]["allreduce_ms"]) for c in xs if pts[c]["ranks"] > 1]
            if ar:
                # Where the plain MPI_Allreduce of the same bytes would end the bar.
                ax.scatter([c for c, _ in ar], [pts[c]["compute_ms"] + v for c, v in ar], marker="_", s=600,
                           color="black", zorder=3, label="compute + plain MPI_Allreduce")
            for c in xs:
                ax.annotate("%.0f%%" % (100 * pts[c]["efficiency"]), (c, pts[c]["step_ms"]), ha="center",
                            va="bottom", fontsize=8)
            ax.set_ylim(0, 1.18 * max(pts[c]["step_ms"] for c in xs))
            p = next(iter(pts.values()))
            ax.set_title("%s  (%.2fM params)\n%s, global batch %s" % (
                lay, p["params"] / 1e6, mode, "/".join(sorted({"%d" % pts[c]["global_batch"] for c in xs}, key=int))),
                fontsize=9)
            ax.set_xlabel("ranks x threads", fontsize=8)
            if j == 0:
                ax.set_ylabel("time per step (ms)")
            ax.tick_params(labelsize=8)
        ax = axes[i][-1]
        for k, c in enumerate(configs):
            pts = sorted((r for r in rows if r["mode"] == mode and r["config"] == c), key=lambda r: r["params"])
            if pts and not all(r["config"] == r["baseline"] for r in pts):
                ax.plot([r["params"] for r in pts], [100 * r["efficiency"] for r in pts], "o-",
                        color=colors[k % len(colors)], label=c)
        ax.axhline(100, color="gray", lw=0.8)
        ax.axhline(90, color="gray", lw=0.8, ls="--")
        ax.set_xscale("log")
        ticks = sorted({r["params"] for r in rows})
        ax.set_xticks(ticks)
        ax.set_xticklabels(["%.2gM" % (t / 1e6) for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.6)
        ax.set_ylim(0, 115)
        ax.set_xlabel("parameters", fontsize=8)
        ax.set_ylabel("parallel efficiency (%)", fontsize=8)
        ax.set_title("%s scaling efficiency\n(vs 1 core; dashed: 90%%)" % mode, fontsize=9)
        if ax.get_legend_handles_labels()[0]:  # only the baseline: nothing to compare yet
            ax.legend(fontsize=8, title="ranks x threads", title_fontsize=8)
        ax.tick_params(labelsize=8)
    h, l = axes[0][0].get_legend_handles_labels()
    fig.legend(h, l, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle("ompml-scale: time per training step, compute vs communication  (labels: efficiency)\n" + title,
                 fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(os.path.join(out, "scaling.png"), dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--out", default=None, help="directory for results.csv, table.md, scaling.png")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    out = a.out or os.path.dirname(os.path.abspath(a.csv))
    rows = load(a.csv)
    if not rows:
        sys.exit("scaling.py: no rows in %s" % a.csv)
    add_efficiency(rows)
    write_results(rows, out)
    plot(rows, out, a.title)
    with open(os.path.join(out, "table.md")) as f:
        sys.stdout.write(f.read())


if __name__ == "__main__":
    main()
