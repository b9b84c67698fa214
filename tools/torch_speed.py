#!/usr/bin/python3
"""Training throughput of ompml-train against PyTorch CPU on the same model and data.

Trains the 784-512-256-10 relu MLP for one epoch of Fashion-MNIST (batch 128, Adam lr 1e-3)
in PyTorch with torch.set_num_threads(T), and runs `ompml-train ... --epochs 1` with
OMP_NUM_THREADS=T; prints both samples/s (training only, evaluation excluded) and the ratio.

  /usr/bin/python3 tools/torch_speed.py [--ompml-train build/host/bin/ompml-train]
        [--data data/fashion-mnist.h5] [--threads 2] [--backend omp] [--blas-only]

It first says which BLAS PyTorch runs: torch's build settings (torch.__config__.show()) and
the OpenBLAS library this process actually loaded (found in /proc/self/maps after a matmul;
Debian's torch reaches OpenBLAS through libblas.so.3), with its core (kernel set) and threads,
and warns on stderr when OPENBLAS_CORETYPE forces a core below what the CPU supports (then the
PyTorch figure is handicapped; unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the anchor).
--blas-only prints that and exits.

PyTorch runs with OMP_WAIT_POLICY=PASSIVE unless the caller set it: its OpenMP pool otherwise
spins between operations and starves OpenBLAS's own threads, which do the matmuls (2-vCPU AMD
EPYC Zen 5: 6.4k samples/s spinning, 15.1k passive, 9.7k with GOMP_SPINCOUNT=0). ompml-train
gets the caller's setting, not this one.

Needs Debian's python3-torch and python3-h5py (/usr/bin/python3, not the pyenv one). The
dataset file comes from `ompml-data import-idx /usr/share/datasets/fashion-mnist -o ...`.
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time

CALLER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by libgomp when torch loads it

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


# OpenBLAS's x86_64 cores -> the widest vector ISA their kernels use (0 SSE, 1 AVX, 2 AVX2,
# 3 AVX-512): the table of lib/bench/openblas_core.hpp, which ompml-bench uses; change both together.
ISA_NAMES = ["SSE", "AVX", "AVX2", "AVX-512"]
CORE_ISA = {c.lower(): 3 for c in ["SapphireRapids", "Cooperlake", "SkylakeX"]}
CORE_ISA.update({c.lower(): 2 for c in ["Haswell", "Zen"]})
CORE_ISA.update({c.lower(): 1 for c in ["Sandybridge", "Bulldozer", "Piledriver", "Steamroller", "Excavator"]})
CORE_ISA.update({c.lower(): 0 for c in ["Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
                                        "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3",
                                        "Barcelona", "Nano", "Bobcat"]})
DEBIAN_BLAS = "/usr/lib/x86_64-linux-gnu/libblas.so.3"  # the alternative Debian's torch links


def isa_name(level):
    return "unknown" if level is None else ISA_NAMES[level]


def cpu_isa():
    """The widest of SSE/AVX/AVX2/AVX-512 this CPU has (from /proc/cpuinfo); None when unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), None)
    except OSError:
        return None
    if flags is None:
        return None
    for level, flag in ((3, "avx512f"), (2, "avx2"), (1, "avx")):
        if flag in flags:
            return level
    return 0


def openblas_core_warning(core, coretype, cpu):
    """The warning when OPENBLAS_CORETYPE forced a core below the CPU; "" otherwise (also when a
    level is unknown), as openblas_core_warning() in lib/bench/openblas_core.hpp."""
    ran = CORE_ISA.get(core.lower())
    if not coretype or ran is None or cpu is None or ran >= cpu:
        return ""
    return (f"OPENBLAS_CORETYPE={coretype} makes OpenBLAS run its {core} kernels ({isa_name(ran)}) on a CPU with "
            f"{isa_name(cpu)}: the pytorch figure is below its best; unset OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE)")


def loaded_blas():
    """Real paths of the BLAS libraries mapped into this process, in map order (no duplicates)."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for ln in f:
                path = ln.split()[-1] if len(ln.split()) >= 6 else ""
                if re.search(r"/lib(open)?blas[^/]*\.so", path) and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def openblas_info(threads):
    """OpenBLAS as this process loaded it: {loaded, path, core, threads, config}; core None when
    no loaded BLAS library answers openblas_get_corename (not OpenBLAS). dlsym on a library also
    searches what it depends on, so Debian's libblas.so.3 answers for the libopenblas it pulls
    in. Sets OpenBLAS's own thread pool to `threads`: torch.set_num_threads does not reach it,
    and the comparison is at equal threads."""
    candidates = loaded_blas() or [DEBIAN_BLAS]
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same library torch uses
            corename = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        corename.restype = lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_set_num_threads(threads)
        return {"loaded": candidates, "path": path, "core": corename().decode(),
                "threads": lib.openblas_get_num_threads(), "config": lib.openblas_get_config().decode()}
    return {"loaded": candidates, "core": None}


def torch_blas_settings():
    """BLAS_INFO, LAPACK_INFO and ATen's CPU capability from torch.__config__.show()."""
    text = torch.__config__.show()
    keys = [m.group(0) for m in re.finditer(r"\b(BLAS_INFO|LAPACK_INFO)=[^,\s]*", text)]
    cap = re.search(r"CPU capability usage: (\S+)", text)
    return ", ".join(keys) + (f"; ATen CPU capability {cap.group(1)}" if cap else "")


def blas_report(threads):
    """Lines on which BLAS PyTorch runs, after one matmul has loaded it; warns on stderr."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    info = openblas_info(threads)
    lines = [f"torch BLAS: {torch_blas_settings()} (torch.__config__.show())"]
    coretype = os.environ.get("OPENBLAS_CORETYPE", "")
    env = f"OPENBLAS_CORETYPE={coretype or 'unset'}, OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE') or 'unset'}"
    lines.append(f"  loaded BLAS: {', '.join(info['loaded'])}")
    if info["core"] is None:
        lines.append(f"  not OpenBLAS (no openblas_get_corename); {env}")
        return lines
    cpu = cpu_isa()
    lines.append(f"  openblas: core {info['core']} ({isa_name(CORE_ISA.get(info['core'].lower()))}; CPU "
                 f"{isa_name(cpu)}), {info['threads']} threads, {env} ({info['config']}; asked {info['path']})")
    warn = openblas_core_warning(info["core"], coretype, cpu)
    if warn:
        print(f"torch_speed.py: warning: {warn}", file=sys.stderr)
    return lines


def torch_epoch(data, threads, batch, seed):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    with h5py.File(data, "r") as f:
        x = np.array(f["train/images"]).reshape(len(f["train/labels"]), -1)
        y = np.array(f["train/labels"]).astype(np.int64)
    x = torch.from_numpy(x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else torch.from_numpy(x)
    y = torch.from_numpy(y)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(y))
    t0 = time.perf_counter()
    for s in range(0, len(y), batch):
        idx = order[s:s + batch]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return len(y) / seconds, seconds, loss.item()


def ompml_epoch(exe, data, threads, batch, backend):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.jsonl")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        env.pop("OMP_WAIT_POLICY")
        if CALLER_WAIT_POLICY is not None:
            env["OMP_WAIT_POLICY"] = CALLER_WAIT_POLICY
        cmd = [exe, "--data", data, "--layers", "784,512,256,10", "--activation", "relu", "--epochs", "1",
               "--batch", str(batch), "--optimizer", "adam", "--lr", "1e-3", "--seed", "1", "--backend", backend,
               "--metrics", metrics]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rec = next(r for r in map(json.loads, open(metrics)) if r["record"] == "epoch")
        return rec["samples_per_s"], rec["seconds"], rec["train_loss"], out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ompml-train", default="build/host/bin/ompml-train")
    ap.add_argument("--data", default="data/fashion-mnist.h5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--backend", default="omp")
    ap.add_argument("--blas-only", action="store_true", help="print which BLAS torch runs, then exit")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    blas = blas_report(a.threads)
    if a.blas_only:
        print("\n".join(blas))
        return

    o_sps, o_s, o_loss, out = ompml_epoch(a.ompml_train, a.data, a.threads, a.batch, a.backend)
    t_sps, t_s, t_loss = torch_epoch(a.data, a.threads, a.batch, 1)
    print(out.strip())
    print("\n".join(blas))
    print(f"threads {a.threads}, batch {a.batch}, 1 epoch of {a.data}")
    print(f"  pytorch {torch.__version__} CPU : {t_sps:9.0f} samples/s ({t_s:.1f} s, last batch loss {t_loss:.3f}; "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']})")
    print(f"  ompml-train ({a.backend})   : {o_sps:9.0f} samples/s ({o_s:.1f} s, epoch train loss {o_loss:.3f})")
    print(f"  ratio ompml / pytorch : {o_sps / t_sps:.2f}")


if __name__ == "__main__":
    main()
