#!/usr/bin/python3
"""multinode_model.py: the two-level model of a data-parallel step across nodes, fitted to the
local cluster's measurements, with predictions for real interconnects, and its plot.

    /usr/bin/python3 tools/multinode_model.py HIER_BENCH_DIR LINKBENCH_DIR --out DIR

Inputs: tools/hier-bench.sh's scale.csv (ompml-scale rows: 1x1, 1x2 with the shared-memory sum,
2x2 with --grad-transport hier and mpi) and tools/linkbench.sh's fit.csv (alpha, beta of the
ping-pong between two nodes, case inter, rate none: TCP over the veth links and the bridge).

The model, per step, M parameters, B rows per rank, L ranks per node (one core each), N nodes:
  compute  t_c = 6 B M / F              F from the 1x2 run's compute (a node's 2 ranks, 1 core each)
  node     t_n = (comm_1x2 / M_1x2) M   the node's shared-memory sum, measured, linear in M
  inter    t_i = k 2 (N-1) alpha + 2 (N-1)/N 4M / beta   a ring allreduce of the fp32 gradient
           between the N node leaders in k = ceil(4M / 4 MiB) buckets (0 for N = 1)
  step     t = t_c + t_n + t_i          no overlap: Open MPI has no progress thread here, so the
                                        sum's time is on the critical path (an upper bound)
Interconnects: "measured TCP" (linkbench's alpha, beta), 100 Gb/s Ethernet and 200 Gb/s HDR
InfiniBand from published figures (line rate; adapter latency, docs/results/scaling.md cites
them). Writes model.csv (the predictions), model.md (tables for the docs) and multinode.png.
"""
import argparse
import csv
import math
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BUCKET = 4 << 20  # bytes per inter-node bucket (--bucket-mb 4)
# Published figures (docs/results/scaling.md, "Several nodes"): line rate in bytes/s, adapter
# latency in s.
PUBLISHED = {
    "100 Gb/s Ethernet": (100e9 / 8, 0.6e-6),   # ConnectX-5 EN: 100 Gb/s, sub-600 ns
    "200 Gb/s HDR InfiniBand": (200e9 / 8, 0.6e-6),  # ConnectX-6 VPI: 200 Gb/s, sub-600 ns
}


def rows_of(path):
    return list(csv.DictReader(open(path)))


def med(rows, case, transport, key):
    v = [float(r[key]) for r in rows if r["case"] == case and r["transport_asked"] == transport]
    return statistics.median(v) if v else float("nan")


def t_inter(M, N, alpha, beta):
    if N <= 1:
        return 0.0
    S = 4.0 * M
    k = max(1, math.ceil(S / BUCKET))
    return k * 2 * (N - 1) * alpha + 2 * (N - 1) / N * S / beta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hier_bench")
    ap.add_argument("linkbench")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = rows_of(os.path.join(a.hier_bench, "scale.csv"))
    fit = [r for r in rows_of(os.path.join(a.linkbench, "fit.csv")) if r["case"] == "inter" and r["rate"] == "none"][0]
    alpha_tcp, beta_tcp = float(fit["alpha_us"]) * 1e-6, float(fit["beta_gbs"]) * 1e9
    M0 = float(rows[0]["params"])
    B = float(next(r for r in rows if r["case"] == "1x2")["rank_batch"])
    F = 6 * B * M0 / (med(rows, "1x2", "shm", "compute_ms") * 1e-3)
    node_per_param = med(rows, "1x2", "shm", "comm_ms") * 1e-3 / M0
    nets = {"measured TCP (local cluster)": (beta_tcp, alpha_tcp)}
    nets.update(PUBLISHED)

    def step(M, N, net):
        beta, alpha = nets[net]
        return 6 * B * M / F + node_per_param * M + t_inter(M, N, alpha, beta)

    # The model against the measurement: the 2x2 inter-node phase (the leaders' sum over TCP)
    meas_inter = med(rows, "2x2", "hier", "inter_ms")
    pred_inter = t_inter(M0, 2, alpha_tcp, beta_tcp) * 1e3
    sizes = [10 ** (e / 4) for e in range(12, 37)]  # 1e3 .. 1e9 parameters
    nodes = [1, 2, 4, 8, 16, 32]
    with open(os.path.join(a.out, "model.csv"), "w") as f:
        f.write("interconnect,params,nodes,compute_ms,node_ms,inter_ms,step_ms,weak_efficiency\n")
        for net in nets:
            for M in sizes:
                t1 = step(M, 1, net)
                for N in nodes:
                    tn = step(M, N, net)
                    beta, alpha = nets[net]
                    f.write("%s,%.0f,%d,%.4f,%.4f,%.4f,%.4f,%.4f\n" % (net, M, N, 6 * B * M / F * 1e3,
                            node_per_param * M * 1e3, t_inter(M, N, alpha, beta) * 1e3, tn * 1e3, t1 / tn))
    # Strong scaling, a fixed global batch G = B L (2 nodes' worth of the 1-node batch): N nodes
    # pay against N/2 when the step gets shorter. G here: 1 node x 2 ranks x B rows x 8.
    L = 2
    G = B * L * 8

    def strong(M, N, net):
        beta, alpha = nets[net]
        return 6 * (G / (N * L)) * M / F + node_per_param * M + t_inter(M, N, alpha, beta)

    md = []
    md.append("| interconnect | alpha (us) | beta (GB/s) | weak eff. 8 nodes at 1M / 20M / 100M params | "
              "strong (%d rows): 2 nodes beat 1 from | 8 beat 4 from |" % G)
    md.append("|---|---|---|---|---|---|")
    for net, (beta, alpha) in nets.items():
        eff = [step(M, 1, net) / step(M, 8, net) for M in (1e6, 20e6, 100e6)]

        def first(N):
            ok = [M for M in sizes if strong(M, N, net) < strong(M, N // 2, net)]
            return "%.2gM params" % (ok[0] / 1e6) if ok else "never (up to 1e9)"
        md.append("| %s | %.2f | %.2f | %.0f%% / %.0f%% / %.0f%% | %s | %s |" % (
            net, alpha * 1e6, beta / 1e9, *(100 * e for e in eff), first(2), first(8)))
    md.append("")
    md.append("Fitted here: F = %.1f GFLOP/s per rank (1x2 compute, %d rows per rank), node sum %.3f ms per M "
              "params (1x2 shm comm). Inter-node phase at %.1fM params, 2 nodes: measured %.1f ms (leader's "
              "MPI time, 2x2 hier median), predicted %.1f ms from the TCP fit." % (
                  F / 1e9, B, node_per_param * 1e9, M0 / 1e6, meas_inter, pred_inter))
    open(os.path.join(a.out, "model.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"measured TCP (local cluster)": "C0", "100 Gb/s Ethernet": "C1", "200 Gb/s HDR InfiniBand": "C2"}
    for net in nets:
        ax[0].plot(nodes, [step(M0, N, net) * 1e3 for N in nodes], "o--", color=styles[net],
                   label="predicted: " + net)
    ax[0].plot([1], [(6 * B * M0 / F + node_per_param * M0) * 1e3], "ks", ms=9, fillstyle="none",
               label="measured terms, 1 node (1x2 compute + node sum)")
    ax[0].plot([2], [(6 * B * M0 / F + node_per_param * M0) * 1e3 + meas_inter], "k*", ms=12,
               label="measured terms, 2 nodes (+ 2x2 hier inter-node phase)")
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("nodes (2 ranks each, %d rows per rank)" % B)
    ax[0].set_ylabel("step time, ms")
    ax[0].set_title("%.1fM parameters: step vs nodes (weak scaling)" % (M0 / 1e6))
    ax[0].legend(fontsize=7)
    ax[0].grid(alpha=0.3)
    for net in nets:
        ax[1].plot(sizes, [step(M, 1, net) / step(M, 8, net) for M in sizes], "-", color=styles[net],
                   label="predicted: " + net)
    ax[1].set_xscale("log")
    ax[1].set_ylim(0, 1.05)
    ax[1].set_xlabel("parameters")
    ax[1].set_ylabel("weak-scaling efficiency, 8 nodes vs 1")
    ax[1].set_title("predicted: when more nodes pay (efficiency t1 / t8)")
    ax[1].legend(fontsize=7)
    ax[1].grid(alpha=0.3)
    fig.suptitle("two-level model: compute + node-local sum (measured) + inter-node sum (Hockney fit)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "multinode.png"), dpi=110)


if __name__ == "__main__":
    main()
