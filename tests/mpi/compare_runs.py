#!/usr/bin/python3
"""Compare two ompml-train runs for the rank-count tests (tests/mpi/check_train_mpi.sh).

  compare_runs.py params A.h5 B.h5 RTOL     /params of two checkpoints: for every tensor,
                                            max|a - b| / max|a| <= RTOL (norm-wise relative,
                                            so weights that happen to be near 0 do not turn
                                            rounding noise into a large ratio); same step
  compare_runs.py metrics A.jsonl B.jsonl RTOL   same epochs and steps; train_loss and test_loss
                                            of the epoch records equal to RTOL relative
Prints the measured worst difference either way, so the test log records it.
"""
import json
import sys

import h5py
import numpy as np


def params(path):
    out = {}
    with h5py.File(path, "r") as f:
        f["params"].visititems(lambda n, d: out.__setitem__(n, d[()]) if isinstance(d, h5py.Dataset) else None)
        step = int(f["state"].attrs["step"])
    return out, step


def cmp_params(a, b, rtol):
    pa, sa = params(a)
    pb, sb = params(b)
    assert sa == sb, f"steps differ: {a} at {sa}, {b} at {sb}"
    assert pa.keys() == pb.keys(), (sorted(pa), sorted(pb))
    worst, worst_elem = 0.0, 0.0
    for k in pa:
        assert pa[k].shape == pb[k].shape, k
        scale = float(np.max(np.abs(pa[k])))
        d = np.abs(pa[k].astype(np.float64) - pb[k].astype(np.float64))
        worst = max(worst, float(np.max(d)) / scale if scale > 0 else float(np.max(d)))
        worst_elem = max(worst_elem, float(np.max(d / np.maximum(np.abs(pa[k]), 1e-3 * scale))))
    print(f"params {a} vs {b} at step {sa}: max norm-wise relative difference {worst:.3g} "
          f"(element-wise, floor 1e-3*max: {worst_elem:.3g}); bound {rtol:g}")
    assert worst <= rtol, f"relative difference {worst:.3g} > {rtol:g}"


def epochs(path):
    """The epoch records of a metrics log (docs/metrics.md)."""
    return [r for r in map(json.loads, open(path)) if r.get("record", "epoch") == "epoch"]


def cmp_metrics(a, b, rtol):
    la = epochs(a)
    lb = epochs(b)
    assert len(la) == len(lb) and len(la) > 0, (len(la), len(lb))
    worst = 0.0
    for x, y in zip(la, lb):
        assert x["epoch"] == y["epoch"] and x["step"] == y["step"], (x, y)
        for key in ["train_loss", "test_loss"]:  # test_acc counts samples: a tie could flip one
            worst = max(worst, abs(x[key] - y[key]) / max(abs(x[key]), 1e-12))
    print(f"metrics {a} vs {b}: {len(la)} epochs, max relative loss/accuracy difference {worst:.3g}; bound {rtol:g}")
    assert worst <= rtol, f"loss history differs by {worst:.3g} > {rtol:g}"


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "params":
        cmp_params(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "metrics":
        cmp_metrics(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)
