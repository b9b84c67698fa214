#!/usr/bin/python3
"""Loss curves of one or several ompml-train runs, overlaid (fp32 against bf16, 1 rank against 4).

  /usr/bin/python3 tools/plot_metrics.py RUN.jsonl [RUN2.jsonl ...] -o curves.png [--label NAME ...]

Reads the --metrics logs (JSON lines, docs/metrics.md) and draws four panels against the
training step: the loss (training: the step records of --metrics-every where there are any,
else each epoch's mean; evaluation: each epoch's validation or test loss, dashed, and the final
test loss as a point), the accuracy of each evaluation, the learning rate, and samples/s. A run
resumed from a checkpoint appends to its log; its records simply continue the curves. Each run
is labelled with --label, else by its file name and what its header says (precision, ranks).
Uses Debian's python3-matplotlib (/usr/bin/python3).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)


def load(path):
    """The records of a metrics log, by kind (a line that is not a record is an error)."""
    kinds = {"header": [], "step": [], "epoch": [], "end": []}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics.py: {path}:{n}: not JSON: {e}")
            kinds.setdefault(r.get("record", "epoch"), []).append(r)  # older logs: epoch lines only
    if not kinds["epoch"] and not kinds["step"] and not kinds["end"]:
        sys.exit(f"plot_metrics.py: {path}: no step, epoch or end records")
    return kinds


def label(path, k):
    name = os.path.splitext(os.path.basename(path))[0]
    if not k["header"]:
        return name
    h = k["header"][0]
    ranks = h.get("ranks", 1)
    return f"{name} ({h.get('settings', {}).get('precision', '?')}, {ranks} rank{'' if ranks == 1 else 's'})"


def main():
    ap = argparse.ArgumentParser(description="Plot ompml-train metrics logs (loss, accuracy, lr, samples/s).")
    ap.add_argument("runs", nargs="+", metavar="RUN.jsonl")
    ap.add_argument("-o", "--output", required=True, help="the picture to write (PNG, SVG, PDF: by its extension)")
    ap.add_argument("--label", action="append", default=[], help="a run's label, in the order of the runs")
    ap.add_argument("--title", default="", help="a title over the panels")
    a = ap.parse_args()
    if a.label and len(a.label) != len(a.runs):
        sys.exit(f"plot_metrics.py: {len(a.label)} --label for {len(a.runs)} runs")

    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    (loss_ax, acc_ax), (lr_ax, rate_ax) = ax
    for i, path in enumerate(a.runs):
        k = load(path)
        name = a.label[i] if a.label else label(path, k)
        color = f"C{i}"
        steps, epochs, ends = k["step"], k["epoch"], k["end"]
        evaluated = "val" if any("val_loss" in r for r in epochs) else "test"
        if steps:
            loss_ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], color=color, alpha=0.35, lw=0.8,
                         label=f"{name}: train (step)")
        if epochs:
            x = [r["step"] for r in epochs]
            loss_ax.plot(x, [r["train_loss"] for r in epochs], "o-", color=color, ms=3, label=f"{name}: train (epoch)")
            loss_ax.plot(x, [r[f"{evaluated}_loss"] for r in epochs], "s--", color=color, ms=3,
                         label=f"{name}: {evaluated}")
            acc_ax.plot(x, [r[f"{evaluated}_acc"] for r in epochs], "s--", color=color, ms=3,
                        label=f"{name}: {evaluated}")
            rate_ax.plot(x, [r["samples_per_s"] for r in epochs], "o-", color=color, ms=3, label=f"{name}: epoch")
        final = [r for r in ends if r.get("test_loss") is not None]
        if final and evaluated == "val":  # the test split, evaluated once at the end
            loss_ax.plot([final[-1]["step"]], [final[-1]["test_loss"]], "*", color=color, ms=10,
                         label=f"{name}: test (final)")
            acc_ax.plot([final[-1]["step"]], [final[-1]["test_acc"]], "*", color=color, ms=10,
                        label=f"{name}: test (final)")
        lr_src = steps or epochs
        if lr_src:
            lr_ax.plot([r["step"] for r in lr_src], [r["lr"] for r in lr_src], color=color, label=name)
        if steps:
            rate_ax.plot([r["step"] for r in steps], [r["samples_per_s"] for r in steps], color=color, alpha=0.35,
                         lw=0.8, label=f"{name}: epoch so far (step)")
    for a_, title, ylabel in [(loss_ax, "loss", "cross-entropy"), (acc_ax, "accuracy", "fraction correct"),
                              (lr_ax, "learning rate", "lr"), (rate_ax, "throughput", "samples/s")]:
        a_.set_title(title)
        a_.set_xlabel("step")
        a_.set_ylabel(ylabel)
        a_.grid(alpha=0.3)
        if a_.has_data():
            a_.legend(fontsize=7)
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.output, dpi=110)
    print(f"plot_metrics.py: wrote {a.output} ({len(a.runs)} run{'s' if len(a.runs) > 1 else ''})")


if __name__ == "__main__":
    main()
