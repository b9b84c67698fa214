#!/usr/bin/python3
"""tools/export_torch.py against ompml, on the test split of a small synthetic dataset, for each
hidden activation (relu, tanh, gelu: the tanh form):

  - PyTorch's forward of the exported state_dict, loaded into export_torch.sequential(), gives
    the loss and accuracy ompml-eval prints (to its 4 decimals; the loss to 1e-4 absolute: the
    printed value's rounding);
  - element by element, PyTorch's softmax equals ompml-predict's probabilities within
    |d| <= 1e-5: both are float32 forward passes that differ only in the gemms' summation order
    (~1e-6 relative in a logit of these 24-32-5 models), and a probability moves by at most
    that much times its own size (<= 1); a wrong layout, scaling or activation is off by 1e-2
    or more;
  - the script's own --check prints the same line as ompml-eval.

usage: check_export_torch.py OMPML_TRAIN OMPML_EVAL OMPML_DATA OMPML_PREDICT WORKDIR TOOLS_DIR
"""
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch

train, evaluate, data, predict, work, tools = sys.argv[1:7]
sys.path.insert(0, tools)
import export_torch  # noqa: E402  (tools/ is on the path only now)

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chdir(work)


def run(*cmd):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout


run(data, "synth", "--train", "1500", "--test", "300", "--features", "24", "--classes", "5", "--seed", "4",
    "-o", "d.h5")
for act in ["relu", "tanh", "gelu"]:
    ck = f"{act}.h5"
    run(train, "--data", "d.h5", "--layers", "24,32,5", "--activation", act, "--batch", "64", "--epochs", "2",
        "--lr", "1e-2", "--checkpoint", ck)
    out = run("/usr/bin/python3", os.path.join(tools, "export_torch.py"), ck, "-o", f"{act}.pt", "--check", "d.h5")
    print(out.strip())
    ours = re.search(r"^samples 300 loss ([0-9.]+) accuracy ([0-9.]+)$", run(evaluate, "--checkpoint", ck), re.M)
    assert ours, f"{act}: no ompml-eval line"
    assert f"samples 300 loss {ours[1]} accuracy {ours[2]}" in out, f"{act}: --check differs from ompml-eval"

    model = export_torch.sequential([24, 32, 5], act)
    model.load_state_dict(torch.load(f"{act}.pt"))
    with h5py.File("d.h5", "r") as f:
        x = export_torch.scaled(f["test/images"][()])
        y = torch.from_numpy(f["test/labels"][()].astype(np.int64))
    with torch.no_grad():
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
    acc = (logits.argmax(dim=1) == y).double().mean().item()
    assert abs(loss - float(ours[1])) <= 1e-4 and f"{acc:.4f}" == ours[2], (act, loss, acc, ours.groups())

    run(predict, "--checkpoint", ck, "-o", f"{act}-p.h5")
    with h5py.File(f"{act}-p.h5", "r") as f:
        theirs = f["probabilities"][()]
    mine = torch.softmax(logits, dim=1).numpy()
    worst = float(np.max(np.abs(mine - theirs)))
    assert worst <= 1e-5, f"{act}: probabilities differ by {worst:.3g}"
    print(f"{act}: PyTorch loss {loss:.6f} accuracy {acc:.4f} = ompml-eval's {ours[1]} {ours[2]}; "
          f"probabilities within {worst:.2g} of ompml-predict's")
print("check_export_torch: passed")
