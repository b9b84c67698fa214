#!/usr/bin/python3
"""Export an ompml checkpoint to PyTorch: the model's state_dict, loadable by the nn.Sequential
that sequential() builds.

  /usr/bin/python3 tools/export_torch.py CHECKPOINT.h5 -o model.pt
  /usr/bin/python3 tools/export_torch.py CHECKPOINT.h5 -o model.pt --check DATA.h5   # + the test split

The model is the checkpoint's stack of nn.Linear layers (weights (OUT, IN), as the checkpoint
stores them: docs/checkpoint.md) with the hidden activation between them and none after the
last: relu -> nn.ReLU(), tanh -> nn.Tanh(), gelu -> nn.GELU(approximate="tanh") (ompml's GELU is
the tanh form, 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))). The state_dict's keys are
nn.Sequential's ("0.weight", "0.bias", "2.weight", ...). The output is the logits; softmax them
for probabilities. Its input is scaled as training scaled it: uint8 images x / 255 (float32
images as stored), flattened to (N, features):

    import torch, export_torch                      # tools/ on sys.path
    model = export_torch.sequential([784, 512, 256, 10], "relu")
    model.load_state_dict(torch.load("model.pt"))
    logits = model(torch.from_numpy(images.reshape(len(images), -1)).float() / 255)

The master weights are exported in float32 whatever --precision trained them (a bf16 run's
checkpoint holds fp32 masters; ompml-eval then runs bf16 gemm operands, PyTorch here fp32).
--check DATA evaluates the exported model on DATA's test split and prints the loss and accuracy
as ompml-eval does ("samples N loss L accuracy A"), for comparison.
Uses Debian's python3-torch and python3-h5py (/usr/bin/python3).
"""
import argparse
import sys

import h5py
import numpy as np
import torch


def sequential(layers, activation):
    """The nn.Sequential of an ompml MLP: Linear, activation, ..., Linear (no activation last)."""
    acts = {"relu": lambda: torch.nn.ReLU(), "tanh": lambda: torch.nn.Tanh(),
            "gelu": lambda: torch.nn.GELU(approximate="tanh")}
    if activation not in acts:
        sys.exit(f"export_torch.py: unknown activation {activation!r} (relu, tanh, gelu)")
    mods = []
    for k in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[k], layers[k + 1]))
        if k < len(layers) - 2:
            mods.append(acts[activation]())
    return torch.nn.Sequential(*mods)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    """(layers, activation, state_dict) of an ompml checkpoint."""
    with h5py.File(path, "r") as f:
        cfg = f["config"].attrs
        if text(cfg.get("format", "")) != "ompml-checkpoint":
            sys.exit(f"export_torch.py: {path}: not an ompml checkpoint (no /config format)")
        layers = [int(w) for w in text(cfg["layers"]).split(",")]
        activation = text(cfg["activation"])
        state = {}
        for k in range(len(layers) - 1):
            g = f[f"params/layer{k}"]
            state[f"{2 * k}.weight"] = torch.from_numpy(np.asarray(g["weight"], dtype=np.float32))
            state[f"{2 * k}.bias"] = torch.from_numpy(np.asarray(g["bias"], dtype=np.float32))
    return layers, activation, state


def scaled(images):
    """Images as training feeds them: (N, features) float32, uint8 divided by 255."""
    x = torch.from_numpy(np.asarray(images).reshape(len(images), -1))
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def main():
    ap = argparse.ArgumentParser(description="Export an ompml checkpoint as a PyTorch state_dict.")
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True, help="the state_dict file to write (torch.save)")
    ap.add_argument("--check", metavar="DATA", help="evaluate the exported model on DATA's test split")
    a = ap.parse_args()
    layers, activation, state = load(a.checkpoint)
    model = sequential(layers, activation)
    model.load_state_dict(state)
    torch.save(model.state_dict(), a.output)
    acts = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "gelu": 'nn.GELU(approximate="tanh")'}
    print(f"export_torch.py: wrote {a.output}: {len(state)} tensors of {','.join(map(str, layers))} "
          f"{activation}; load with export_torch.sequential({layers}, {activation!r}) "
          f"(Linear and {acts[activation]}); input x / 255 for uint8 images")
    if a.check:
        with h5py.File(a.check, "r") as f:
            x, y = scaled(f["test/images"][()]), torch.from_numpy(f["test/labels"][()].astype(np.int64))
        with torch.no_grad():
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
            acc = (logits.argmax(dim=1) == y).double().mean().item()
        print(f"samples {len(y)} loss {loss:.4f} accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
