#!/usr/bin/python3
"""Read ompml checkpoints with h5py, independently of the C++ reader (docs/checkpoint.md).

  check_checkpoint_h5py.py schema FILE   check the documented schema: the user block (magic),
                                         /config attributes,
                                         /params/layerK/{weight (OUT, IN), bias (OUT)} matching
                                         /config layers, /optimizer/{m,v} of the same shapes,
                                         /state attributes; print a summary
  check_checkpoint_h5py.py same A B      tensors and step counters of A and B are bitwise equal
"""
import struct
import sys

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def tensors(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
    return out


def schema(path):
    # New files start with a 512-byte user block whose first line is the magic; HDF5 (and so
    # h5py) starts reading at byte 512 by itself.
    with open(path, "rb") as raw:
        assert raw.read(17) == b"ompml-checkpoint\n", "no ompml-checkpoint magic at byte 0"
    with h5py.File(path, "r") as f:
        assert f.userblock_size == 512, f.userblock_size
        cfg = f["config"].attrs
        assert text(cfg["format"]) == "ompml-checkpoint", cfg["format"]
        assert int(cfg["version"]) == 3
        assert text(cfg["precision"]) in ("fp32", "bf16"), cfg["precision"]
        for key in ["activation", "optimizer", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay",
                    "schedule", "warmup", "step_size", "gamma", "total_steps", "clip", "seed", "batch", "epochs",
                    "eval_batch", "reproducible_ranks", "data_path", "data_features", "data_classes", "data_train_samples",
                    "data_test_samples"]:
            assert key in cfg, f"/config lacks attribute {key}"
        layers = [int(w) for w in text(cfg["layers"]).split(",")]
        groups = ["params", "optimizer/m"] + (["optimizer/v"] if text(cfg["optimizer"]) != "sgd" else [])
        nparams = 0
        for k in range(len(layers) - 1):
            for g in groups:
                w, b = f[f"{g}/layer{k}/weight"], f[f"{g}/layer{k}/bias"]
                assert w.shape == (layers[k + 1], layers[k]), (g, k, w.shape)
                assert b.shape == (layers[k + 1],), (g, k, b.shape)
                assert w.dtype == np.float32 and b.dtype == np.float32
                assert np.all(np.isfinite(w[()])) and np.all(np.isfinite(b[()]))
            nparams += layers[k + 1] * layers[k] + layers[k + 1]
        assert f"params/layer{len(layers) - 1}" not in f
        st = f["state"].attrs
        for key in ["step", "epoch", "step_in_epoch", "epoch_loss_sum", "epoch_rows", "elapsed_seconds", "seed",
                    "checksum"]:
            assert key in st, f"/state lacks attribute {key}"
        assert int(f["optimizer"].attrs["steps"]) == int(st["step"])
        print(f"{path}: ok: layers {layers} ({nparams} parameters), {text(cfg['activation'])}, "
              f"{text(cfg['precision'])}, "
              f"{text(cfg['optimizer'])} lr {float(cfg['lr']):g}, step {int(st['step'])}, epoch {int(st['epoch'])}")


def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        ta, tb = tensors(fa), tensors(fb)
        assert ta.keys() == tb.keys(), (sorted(ta), sorted(tb))
        for k in ta:
            assert ta[k].tobytes() == tb[k].tobytes(), f"{k} differs"
        for key in ["step", "epoch", "step_in_epoch"]:
            assert int(fa["state"].attrs[key]) == int(fb["state"].attrs[key]), key
        # The epoch's running loss sum too, bit for bit: it is summed per step in one order.
        for key in ["epoch_loss_sum", "epoch_rows"]:
            x, y = float(fa["state"].attrs[key]), float(fb["state"].attrs[key])
            assert struct.pack("<d", x) == struct.pack("<d", y), f"state {key}: {x!r} != {y!r}"
    print(f"{a} and {b}: {len(ta)} tensors bitwise equal")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "schema":
        schema(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
