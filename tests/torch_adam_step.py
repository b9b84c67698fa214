#!/usr/bin/python3
"""Compare ompml's training steps with PyTorch's (an independent reference).

For each case, tests/torch_step_helper (C++) writes the initial model as an ompml checkpoint
(before.h5), a batch (batch.h5) and the model after its steps on that batch (after.h5). This
script reads them with h5py, rebuilds the MLP as torch.nn.Linear layers, takes the same steps
with torch.optim (and clip_grad_norm_ where the checkpoint's config asks for it) and compares
the losses, the updated weights and the optimizer state.

Tolerances (float32 on both sides; the only differences are summation orders in the matmuls
and reductions, ~1e-6 relative in the gradients):
  loss            |d| <= 1e-5 * |ref|
  parameters      |d| <= 2e-6 + 1e-5 * |ref|   (Adam's first step is ~lr * sign(g), insensitive
                                                to gradient rounding; SGD moves by lr * g)
  optimizer m, v  |d| <= 1e-6 * max|ref| + 1e-4 * |ref|   (sums of gradients: an element that
                                                cancels to ~0 keeps the rounding noise of its
                                                terms, ~1e-6 of the tensor's scale)

The bf16 case (sgd_bf16: one SGD step of a model trained with --precision bf16) runs PyTorch's
forward under torch.autocast("cpu", dtype=torch.bfloat16), the reference for mixed precision.
The two round differently by design: autocast rounds every layer's output (logits included)
and every backward product to bf16, ompml keeps the gemms' float sums and rounds only the
gemm inputs. bf16 keeps 8 significant bits (rounding error <= 2^-9 = 0.2% relative), and a
gradient element gathers a few such roundings per layer, so the two gradients differ by a few
tenths of a percent of their scale. Compared are the loss and the step's update (after -
before, lr * gradient for SGD):
  loss            |d| <= 3e-3 * |ref|
  update          |d| <= 2e-2 * max|ref| + 5e-2 * |ref|   (per tensor)
measured: docs/results/precision.md.

Run by ctest as: /usr/bin/python3 torch_adam_step.py HELPER WORKDIR
(Debian's python3-torch and python3-h5py; the pyenv python3 on PATH does not see them.)
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

CASES = ["adam", "adamw", "sgd", "sgd_bf16"]


def load_layers(f, group):
    out = []
    k = 0
    while f"{group}/layer{k}" in f:
        g = f[f"{group}/layer{k}"]
        out.append((np.array(g["weight"]), np.array(g["bias"])))
        k += 1
    return out


def build(cfg, layers):
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
           "gelu": lambda: torch.nn.GELU(approximate="tanh")}[cfg["activation"]]
    mods = []
    for i, (w, b) in enumerate(layers):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i + 1 < len(layers):
            mods.append(act())
    return torch.nn.Sequential(*mods)


def compare(name, got, ref, atol, rtol, scale_atol=0.0):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    atol = atol + scale_atol * float(np.abs(ref).max())
    assert got.shape == ref.shape, f"{name}: shape {got.shape} vs {ref.shape}"
    err = np.abs(got - ref)
    excess = err - (atol + rtol * np.abs(ref))
    worst = int(np.argmax(excess))
    ok = bool(np.all(excess <= 0))
    print(f"  {name:28s} max |d| {err.max():.3e}  worst excess {excess.flat[worst]:+.3e}  {'ok' if ok else 'FAIL'}")
    return ok


def run_case(helper, workdir, case):
    d = os.path.join(workdir, case)
    os.makedirs(d, exist_ok=True)
    subprocess.run([helper, d, case], check=True)
    with h5py.File(os.path.join(d, "before.h5"), "r") as f:
        cfg = dict(f["config"].attrs)
        cfg = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in cfg.items()}
        before = load_layers(f, "params")
    with h5py.File(os.path.join(d, "batch.h5"), "r") as f:
        x = torch.from_numpy(np.array(f["x"]))
        y = torch.from_numpy(np.array(f["y"]).astype(np.int64))
        losses = np.array(f["loss"])
    with h5py.File(os.path.join(d, "after.h5"), "r") as f:
        after = load_layers(f, "params")
        m_after = load_layers(f, "optimizer/m")
        v_after = load_layers(f, "optimizer/v") if "optimizer/v" in f else None
        steps = int(f["state"].attrs["step"])

    torch.manual_seed(0)
    model = build(cfg, before)
    params = list(model.parameters())
    kind, lr, wd = cfg["optimizer"], float(cfg["lr"]), float(cfg["weight_decay"])
    betas = (float(cfg["beta1"]), float(cfg["beta2"]))
    if kind == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=float(cfg["eps"]), weight_decay=wd)
    elif kind == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=float(cfg["eps"]), weight_decay=wd)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=float(cfg["momentum"]), weight_decay=wd)
    bf16 = cfg.get("precision", "fp32") == "bf16"
    ref_losses = []
    for _ in range(steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        ref_losses.append(loss.item())
        loss.backward()
        if float(cfg["clip"]) > 0:
            torch.nn.utils.clip_grad_norm_(params, float(cfg["clip"]))
        opt.step()

    print(f"{case}: {steps} step(s) of {kind} ({cfg['layers']} {cfg['activation']}, clip {cfg['clip']}, "
          f"{cfg.get('precision', 'fp32')})")
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    if bf16:
        ok = compare("loss per step", losses, ref_losses, 0.0, 3e-3)
        for k, lin in enumerate(lins):
            for name, got, ref, start in [("weight", after[k][0], lin.weight, before[k][0]),
                                          ("bias", after[k][1], lin.bias, before[k][1])]:
                ref_update = ref.detach().numpy().astype(np.float64) - start
                ok &= compare(f"layer{k}.{name} update", got - start, ref_update, 0.0, 5e-2, 2e-2)
        return ok
    ok = compare("loss per step", losses, ref_losses, 0.0, 1e-5)
    for k, lin in enumerate(lins):
        w, b = after[k]
        ok &= compare(f"layer{k}.weight", w, lin.weight.detach().numpy(), 2e-6, 1e-5)
        ok &= compare(f"layer{k}.bias", b, lin.bias.detach().numpy(), 2e-6, 1e-5)
        st_w, st_b = opt.state[lin.weight], opt.state[lin.bias]
        mkey = "momentum_buffer" if kind == "sgd" else "exp_avg"
        ok &= compare(f"layer{k}.m (weight)", m_after[k][0], st_w[mkey].numpy(), 0.0, 1e-4, 1e-6)
        ok &= compare(f"layer{k}.m (bias)", m_after[k][1], st_b[mkey].numpy(), 0.0, 1e-4, 1e-6)
        if v_after is not None:
            ok &= compare(f"layer{k}.v (weight)", v_after[k][0], st_w["exp_avg_sq"].numpy(), 0.0, 1e-4, 1e-6)
            ok &= compare(f"layer{k}.v (bias)", v_after[k][1], st_b["exp_avg_sq"].numpy(), 0.0, 1e-4, 1e-6)
    return ok


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: torch_adam_step.py HELPER WORKDIR")
    helper, workdir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    ok = True
    for case in CASES:
        ok &= run_case(helper, workdir, case)
    print("all cases match PyTorch" if ok else "MISMATCH with PyTorch")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
