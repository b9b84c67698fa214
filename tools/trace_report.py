#!/usr/bin/python3
"""trace_report.py: where the steps' time goes, from a trace of `ompml-train --trace` (or
ompml-scale --trace): a per-phase table per rank, and a timeline picture of a few steps.

usage: tools/trace_report.py FILE.json [--png OUT.png] [--steps N] [--first-step S] [--csv OUT.csv]

The table, one block per rank, one row per phase (span name) and thread row:
  steps      how many steps the phase occurs in
  mean/p50/p95 ms per step: the phase's time summed within each step it occurs in (a layer's
             forward and backward are phases of their own: "forward L0")
  share      the phase's mean time per step against the mean step time (% of the step). Phases
             nested in another (a "grad bucket" inside a "backward") are listed too, marked
             with "  >" so they are not added twice; the loader's phases run on their own
             thread, beside the step, not inside it.
  (uncovered) the step's time that no direct child span covers (the loop's own bookkeeping)
--csv writes the same rows (rank,phase,thread,nested,steps,mean_ms,p50_ms,p95_ms,share_pct;
nested 1 for the "  >" rows). Spans outside steps (evaluate, checkpoint, stop flag; not those
nested in them) are listed by count and total; the counters (samples/s, GFLOP/s, grad bytes)
by their mean per step.

--png draws N steps (default 3, from --first-step, default the trace's middle step so warm-up
is left out) for every rank: one lane per thread row, and one lane per rank for the gradient
buckets in flight (async spans), so the overlap of the gradient sum with backward shows.
"""
import argparse
import csv
import json
import signal
import statistics
import sys
from collections import defaultdict

EPS_US = 0.002
KNOWN = ["step", "batch", "forward", "loss", "backward", "grad bucket", "grad sum", "optimizer", "clip", "normalize",
         "bucket in flight", "read", "upload", "evaluate", "checkpoint", "stop flag", "epoch start",
         "grad node sum", "grad inter-node", "grad share"]


def die(msg):
    print(f"trace_report.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        die(f"{path}: {e.strerror}")
    except ValueError as e:
        die(f"{path}: not JSON: {e}")
    events, other = doc, {}  # the plain-array form
    if isinstance(doc, dict):
        events, other = doc.get("traceEvents"), doc.get("otherData", {})
    if not isinstance(events, list):
        die(f"{path}: not a trace-event file (no traceEvents list)")
    return [e for e in events if isinstance(e, dict)], other


def names_of(events):
    procs, threads = {}, {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        elif e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
    return procs, threads


def depths(spans):
    """Nesting depth of each X span of one thread row (by time containment)."""
    out, stack = {}, []
    for e in sorted(spans, key=lambda e: (e["ts"], -e["dur"])):
        while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - EPS_US:
            stack.pop()
        out[id(e)] = len(stack)
        stack.append(e)
    return out


def async_spans(events):
    """pid -> [(begin ts, end ts)] of the b/e pairs, matched by (pid, cat, name, id) as Chrome does (an
    id may come back once its span has ended); a begin without its end gets end = begin."""
    opened, out = defaultdict(list), defaultdict(list)
    for e in sorted((e for e in events if e.get("ph") in ("b", "e")), key=lambda e: e["ts"]):
        key = (e.get("pid"), e.get("cat"), e.get("name"), e.get("id"))
        if e["ph"] == "b":
            opened[key].append(e["ts"])
        elif opened[key]:
            out[key[0]].append((opened[key].pop(), e["ts"]))
    for key, begins in opened.items():
        out[key[0]] += [(b, b) for b in begins]
    return {pid: sorted(spans) for pid, spans in out.items()}


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def rank_table(pid, rows, threads, events):
    """Rows of (phase, thread, steps, mean, p50, p95, share) for one rank, plus extras."""
    train_tid = next((t for (p, t), n in threads.items() if p == pid and n == "train"), None)
    spans = {tid: s for (p, tid), s in rows.items() if p == pid}
    if train_tid is None:  # a file without thread names: the row with the step spans
        train_tid = next((t for t, s in spans.items() if any(e["name"] == "step" for e in s)), None)
    train = spans.get(train_tid, [])
    steps = {e["args"]["step"]: e for e in train if e["name"] == "step" and "step" in e.get("args", {})}
    if not steps:
        return None
    step_ms = [s["dur"] / 1e3 for s in steps.values()]
    mean_step = statistics.mean(step_ms)
    table, outside = [], defaultdict(list)
    for tid, ss in sorted(spans.items()):
        d = depths(ss)
        per = defaultdict(lambda: defaultdict(float))  # (name, depth-marker) -> step -> ms
        for e in ss:
            if e["name"] == "step":
                continue
            step = e.get("args", {}).get("step")
            if step is None or step not in steps:
                if d[id(e)] == 0:  # evaluate's own forward spans are part of evaluate
                    outside[e["name"]].append(e["dur"] / 1e3)
                continue
            nested = tid == train_tid and d[id(e)] > 1  # deeper than a direct child of "step"
            layer = e.get("args", {}).get("layer")
            name = e["name"] if layer is None else f"{e['name']} L{layer}"
            per[(name, nested)][step] += e["dur"] / 1e3
        tname = threads.get((pid, tid), f"thread {tid}")
        for (name, nested), by_step in per.items():
            v = list(by_step.values())
            m = sum(v) / len(steps)  # per step, over all steps (0 where it did not occur)
            table.append(("  > " + name if nested else name, tname, len(v), m, statistics.median(v),
                          pct(v, 0.95), 100 * m / mean_step))
    d = depths(train)
    covered = defaultdict(float)
    for e in train:
        if d[id(e)] == 1 and e.get("args", {}).get("step") in steps:
            covered[e["args"]["step"]] += e["dur"]
    gaps = [(s["dur"] - covered[k]) / 1e3 for k, s in steps.items()]
    gm = statistics.mean(gaps)
    table.append(("(uncovered)", threads.get((pid, train_tid), "train"), len(gaps), gm, statistics.median(gaps),
                  pct(gaps, 0.95), 100 * gm / mean_step))
    table.sort(key=lambda r: -r[6])
    table.insert(0, ("step", threads.get((pid, train_tid), "train"), len(step_ms), mean_step,
                     statistics.median(step_ms), pct(step_ms, 0.95), 100.0))
    counters = defaultdict(list)
    for e in events:
        if e.get("ph") == "C" and e["pid"] == pid:
            counters[e["name"]].append(e["args"].get("value", 0.0))
    return table, outside, counters, steps


def print_rank(pid, procs, result):
    table, outside, counters, steps = result
    print(f"\n{procs.get(pid, f'rank {pid}')}: {len(steps)} steps ({min(steps)}..{max(steps)})")
    print(f"  {'phase':<22} {'thread':<13} {'steps':>6} {'mean ms':>9} {'p50 ms':>9} {'p95 ms':>9} {'share':>7}")
    for name, thread, n, mean, p50, p95, share in table:
        print(f"  {name:<22} {thread:<13} {n:>6} {mean:>9.3f} {p50:>9.3f} {p95:>9.3f} {share:>6.1f}%")
    if outside:
        print("  outside steps: " + ", ".join(f"{k} {len(v)}x {sum(v):.1f} ms (mean {statistics.mean(v):.2f})"
                                             for k, v in sorted(outside.items())))
    if counters:
        print("  counters (mean per step): " + ", ".join(f"{k} {statistics.mean(v):.6g}"
                                                       for k, v in sorted(counters.items())))


def write_csv(path, results):
    try:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rank", "phase", "thread", "nested", "steps", "mean_ms", "p50_ms", "p95_ms", "share_pct"])
            for pid, (table, *_rest) in results.items():
                for name, thread, n, mean, p50, p95, share in table:
                    nested = name.startswith("  > ")
                    w.writerow([pid, name[4:] if nested else name, thread, int(nested), n, f"{mean:.4f}",
                                f"{p50:.4f}", f"{p95:.4f}", f"{share:.2f}"])
    except OSError as e:
        die(f"{path}: {e.strerror}")


def draw(path, events, rows, procs, threads, steps_by_rank, first, count, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = [s for s in sorted(steps_by_rank[min(steps_by_rank)]) if s >= first][:count]
    if not shown:
        die(f"no steps from {first} on")
    t0 = min(steps_by_rank[p][shown[0]]["ts"] for p in steps_by_rank if shown[0] in steps_by_rank[p])
    t1 = max(steps_by_rank[p][shown[-1]]["ts"] + steps_by_rank[p][shown[-1]]["dur"]
             for p in steps_by_rank if shown[-1] in steps_by_rank[p])
    buckets = async_spans(events)
    lanes = []  # (label, kind, key)
    for pid in sorted(steps_by_rank):
        for (p, tid) in sorted(rows):
            if p == pid:
                lanes.append((f"{procs.get(pid, pid)}: {threads.get((pid, tid), tid)}", "x", (pid, tid)))
        if pid in buckets:
            lanes.append((f"{procs.get(pid, pid)}: gradient sum in flight", "async", pid))
    cmap = plt.get_cmap("tab20")
    palette = {n: cmap(i) for i, n in enumerate(KNOWN)}  # the same colour in every picture
    colours = {}

    def colour(name):
        if name not in colours:
            colours[name] = palette.get(name, cmap((len(KNOWN) + len(colours)) % 20))
        return colours[name]

    fig, ax = plt.subplots(figsize=(14, 0.55 * len(lanes) + 1.6))
    for y, (label, kind, key) in enumerate(lanes):
        if kind == "x":
            spans = [e for e in rows[key] if e["ts"] + e["dur"] >= t0 and e["ts"] <= t1]
            d = depths(rows[key])
            for e in sorted(spans, key=lambda e: d[id(e)]):  # parents first, children on top
                h = 0.8 * 0.75 ** d[id(e)]
                ax.barh(y, e["dur"] / 1e3, left=(e["ts"] - t0) / 1e3, height=h, color=colour(e["name"]),
                        edgecolor="black", linewidth=0.2)
        else:
            for k, (begin, end) in enumerate(buckets[key]):
                if end >= t0 and begin <= t1:  # alternate up and down: buckets may overlap
                    ax.barh(y + (0.15 if k % 2 else -0.15), max(end - begin, 1.0) / 1e3,
                            left=(begin - t0) / 1e3, height=0.4,
                            color=colour("bucket in flight"), edgecolor="black", linewidth=0.2)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels([lane[0] for lane in lanes], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, (t1 - t0) / 1e3)
    ax.set_xlabel(f"ms from the start of step {shown[0]}")
    ax.set_title(f"{title}: steps {shown[0]}..{shown[-1]}")
    ax.legend(handles=[Patch(color=c, label=n) for n, c in colours.items()], loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        die(f"{path}: {e.strerror}")
    print(f"\ntimeline of steps {shown[0]}..{shown[-1]}: {path}")


def main():
    ap = argparse.ArgumentParser(description="per-phase table and timeline of an ompml trace")
    ap.add_argument("file")
    ap.add_argument("--png", help="draw a timeline of a few steps of every rank")
    ap.add_argument("--steps", type=int, default=3, help="steps in the picture (default 3)")
    ap.add_argument("--first-step", type=int, help="first step in the picture (default: the middle one)")
    ap.add_argument("--csv", help="also write the table as CSV")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly
    ap.error = lambda msg: die(f"{msg} (--help for usage)")  # one line, exit 2
    a = ap.parse_args()
    if a.steps < 1:
        die(f"--steps {a.steps}: must be >= 1")

    events, other = load(a.file)
    procs, threads = names_of(events)
    rows = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            rows[(e["pid"], e.get("tid", 0))].append(e)
    pids = sorted({p for p, _ in rows})
    results = {p: r for p in pids if (r := rank_table(p, rows, threads, events)) is not None}
    if not results:
        die(f"{a.file}: no step spans (was the run's --trace-steps window empty?)")
    if other:
        print(", ".join(f"{k} {v}" for k, v in other.items()))
    for pid, r in results.items():
        print_rank(pid, procs, r)
    if a.csv:
        write_csv(a.csv, results)
    if a.png:
        steps_by_rank = {p: r[3] for p, r in results.items()}
        all_steps = sorted(steps_by_rank[min(steps_by_rank)])
        first = a.first_step if a.first_step is not None else all_steps[len(all_steps) // 2]
        title = f"{other.get('program', 'trace')}, {len(results)} rank(s)"
        draw(a.png, events, rows, procs, threads, steps_by_rank, first, a.steps, title)


if __name__ == "__main__":
    main()
