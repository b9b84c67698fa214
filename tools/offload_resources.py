#!/usr/bin/python3
"""What the compiler made of each omp kernel for the GPU, per set of tuning flags, without a GPU.

    /usr/bin/python3 tools/offload_resources.py [--build build/gpu] [--variants LIST] [--csv]
        [--keep DIR]

Compiles lib/kernels/*_omp.cpp with the command lines of a configured gpu build
(BUILD/compile_commands.json, so OMPML_OFFLOAD_ARCH and the other flags match the build; its
-foffload-lto, if any, is replaced by each variant's flags), once per variant, and reads back from ptxas (-Xcuda-ptxas -v) and from the final PTX (-save-temps), per
kernel (target region):

  exec_mode      spmd: a combined `target teams distribute parallel for`, launched with all
                 threads running the loop; generic-spmd: written in generic form (code outside
                 the `parallel`) and turned into SPMD by LLVM's openmp-opt pass; generic: the
                 team's main thread runs the region and wakes workers through a state machine
  state_machine  1 when the kernel keeps the generic-mode worker state machine
  nested         1 when the device runtime must allow nested parallel regions in it
  max_threads    the thread_limit the kernel was compiled for (0: runtime default)
  registers, stack (bytes of local memory per thread), spill (bytes stored + loaded),
  smem (static team-shared memory), ptx (PTX instructions of the kernel's own body), calls
  (calls left in that body: device runtime or non-inlined functions)

Variants (--variants, comma list; default: all four):
  per-tu         the build as configured: device code compiled and optimised per source file,
                 the device runtime linked into each file as bitcode
  per-tu+assume  plus -fopenmp-assume-no-thread-state -fopenmp-assume-no-nested-parallelism
  lto            -foffload-lto: device bitcode of all files linked and optimised together at link
  lto+assume     both

--check: compile only the variant the build is configured with (lto or per-tu) and exit 1,
naming the kernel, when a kernel is not SPMD, keeps the generic-mode state machine, spills
registers, or (gemm) has no team-shared memory; the gpu build's ctest `gpu_codegen` runs it.

Needs a configured gpu build (cmake --preset gpu) and CUDA's ptxas (/usr/local/cuda); no GPU.
"""
import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ASSUME = ["-fopenmp-assume-no-thread-state", "-fopenmp-assume-no-nested-parallelism"]
VARIANTS = {"per-tu": [], "per-tu+assume": ASSUME, "lto": ["-foffload-lto"], "lto+assume": ["-foffload-lto"] + ASSUME}
EXEC_MODES = {1: "generic", 2: "spmd", 3: "generic-spmd"}
COLUMNS = ["variant", "kernel", "line", "exec_mode", "state_machine", "nested", "max_threads", "registers",
           "stack", "spill", "smem", "ptx", "calls"]


def die(msg):
    print(f"offload_resources.py: {msg}", file=sys.stderr)
    sys.exit(1)


def compile_commands(build, pattern):
    """(source, directory, argv) of the build's sources matching pattern, -o/-c removed."""
    path = os.path.join(build, "compile_commands.json")
    if not os.path.exists(path):
        die(f"{path} not found: configure a gpu build first (cmake --preset gpu)")
    cmds = []
    for e in json.load(open(path)):
        src = e["file"]
        if not re.search(pattern, src):
            continue
        argv, out, skip = shlex.split(e["command"]), [], False
        for a in argv:
            if skip:
                skip = False
            elif a == "-o":
                skip = True
            elif a not in ("-c", src, "-foffload-lto", "-fno-offload-lto") and a not in ASSUME and \
                    not a.startswith("--libomptarget-nvptx-bc-path="):
                out.append(a)  # compile_variant adds the variant's own flags back
        cmds.append((src, e["directory"], out))
    return sorted(cmds)


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        die(f"failed ({p.returncode}): {shlex.join(argv)}\n{p.stderr[-4000:]}")
    return p.stderr


ACTS = ["identity", "relu", "tanh", "gelu"]  # enum class Act in lib/kernels/activation.hpp
BUILTIN_TYPES = {"i": "int", "j": "unsigned", "l": "long", "m": "size_t", "f": "float"}


def short_name(symbol):
    """Kernel name and source line of a target region or CUDA kernel symbol:
    __omp_offloading_<dev>_<file>__ZN5ompml4gemmILNS_4ImplE1EE..._l313 -> (gemm, 313);
    _ZN5ompml12_GLOBAL__N_117act_backward_loopILNS_3ActE1EE..._l17 -> (act_backward_loop<relu>, 17);
    _ZN5ompml51_GLOBAL__N__..._2667711gemm_kernelILi4ELi16ELb0ELb1EEEv... -> (gemm_kernel<4,16,0,1>, '')."""
    start = symbol.find("_ZN")
    line = re.search(r"_l(\d+)$", symbol)
    line = line.group(1) if line else ""
    if start < 0:
        return symbol, line
    pos, name = start + 3, symbol
    # Nested name: <length><identifier>... ; skip the namespaces (ompml, cuda, anonymous ones).
    while (m := re.match(r"(\d+)", symbol[pos:])):
        n = int(m.group(1))
        ident = symbol[pos + len(m.group(1)):pos + len(m.group(1)) + n]
        pos += len(m.group(1)) + n
        if ident not in ("ompml", "cuda") and not ident.startswith("_GLOBAL__N"):
            name = ident
            break
    # Template arguments, if any: literals L<type><value>E (int, bool, enum Act), builtin types
    # (the loop index: i int, m std::size_t; f float) and ompml::bf16 (NS_4bf16E, the element
    # type of the float/bf16 twins); the Impl argument of the kernel templates (LNS_4ImplE1E) is
    # the same for all and left out.
    if symbol[pos:pos + 1] == "I":
        args, rest = [], symbol[pos + 1:]
        while rest and rest[0] != "E":
            lit = re.match(r"L(i|b|NS_3ActE|NS_4ImplE)(\d+)E", rest)
            if lit:
                if lit.group(1) != "NS_4ImplE":
                    args.append(ACTS[int(lit.group(2))] if lit.group(1) == "NS_3ActE" else lit.group(2))
                rest = rest[lit.end():]
            elif rest.startswith("NS_4bf16E"):
                args.append("bf16")
                rest = rest[len("NS_4bf16E"):]
            elif rest[0] in BUILTIN_TYPES:
                args.append(BUILTIN_TYPES[rest[0]])
                rest = rest[1:]
            else:
                break
        if args:
            name += "<" + ",".join(args) + ">"
    return name, line


def parse_ptxas(text):
    """ptxas -v output -> {entry: {registers, stack, spill, smem}}."""
    info, cur = {}, None
    for ln in text.splitlines():
        m = re.search(r"Compiling entry function '(\S+)'", ln)
        if m:
            cur = info.setdefault(m.group(1), {})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
        if m:
            cur["stack"] = int(m.group(1))
            cur["spill"] = int(m.group(2)) + int(m.group(3))
        m = re.search(r"Used (\d+) registers", ln)
        if m:
            cur["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", ln)
            cur["smem"] = int(s.group(1)) if s else 0
    return info


def parse_ptx(text):
    """Final PTX -> {entry: {exec_mode, state_machine, nested, max_threads, ptx, calls}}."""
    out = {}
    # KernelEnvironmentTy starts with ConfigurationEnvironmentTy: u8 UseGenericStateMachine,
    # u8 MayUseNestedParallelism, u8 ExecMode, pad, i32 MinThreads, i32 MaxThreads, ... (LLVM 19)
    for m in re.finditer(r"\.u64 (\S+)_kernel_environment\[\d+\] = \{(\d+), (\d+),", text):
        b0 = int(m.group(2)).to_bytes(8, "little")
        b1 = int(m.group(3)).to_bytes(8, "little")
        out[m.group(1)] = {"state_machine": b0[0], "nested": b0[1], "exec_mode": EXEC_MODES.get(b0[2], b0[2]),
                           "max_threads": max(0, int.from_bytes(b1[0:4], "little", signed=True))}
    for m in re.finditer(r"\.entry (\S+)\(", text):
        name = m.group(1)
        body_start = text.index("{", m.end())
        body_end = text.index("\n}", body_start)
        body = [ln.strip() for ln in text[body_start:body_end].splitlines()]
        # An instruction ends with ';' (directives start with '.'); a call spans several lines,
        # its first one being `call...`.
        calls = sum(ln.startswith("call") for ln in body)
        instr = sum(ln.endswith(";") and not ln.startswith((".", ")")) for ln in body) + calls
        out.setdefault(name, {}).update(ptx=instr, calls=calls)
    return out


def device_runtime_flag(compiler):
    """--libomptarget-nvptx-bc-path= for the LLVM install of compiler (its ../lib, as CMake does)."""
    path = shutil.which(compiler)
    if not path:
        die(f"compiler {compiler} not found")
    return "--libomptarget-nvptx-bc-path=" + os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(path)),
                                                                          "..", "lib"))


def compile_variant(name, flags, cmds, workdir):
    """Compiles (and for LTO links) one variant in workdir; returns (ptxas text, PTX text).
    The device runtime bitcode is linked per file without LTO, at the link with it."""
    os.makedirs(workdir, exist_ok=True)
    lto = "-foffload-lto" in flags
    rtl = device_runtime_flag(cmds[0][2][0])
    ptxas, objs = "", []
    for src, _, argv in cmds:
        obj = os.path.join(workdir, os.path.basename(src) + ".o")
        ptxas += run(argv + flags + ([] if lto else [rtl]) +
                     ["-save-temps", "-Xcuda-ptxas", "-v", "-c", src, "-o", obj], workdir)
        objs.append(obj)
    if lto:
        link = [cmds[0][2][0], "-fopenmp", rtl] + [a for a in cmds[0][2] if a.startswith("--offload-arch=")]
        ptxas += run(link + flags + ["-shared", "-save-temps", "-Xcuda-ptxas", "-v", "-o",
                                     os.path.join(workdir, "libkernels.so")] + objs, workdir)
        ptx_files = [f for f in os.listdir(workdir) if f.startswith("libkernels.so.nvptx64") and f.endswith(".s")]
    else:
        ptx_files = [f for f in os.listdir(workdir) if "-openmp-nvptx64-" in f and f.endswith(".s")]
    if not ptx_files:
        die(f"variant {name}: no device PTX was saved in {workdir}")
    ptx = "".join(open(os.path.join(workdir, f)).read() for f in sorted(ptx_files))
    open(os.path.join(workdir, "ptxas.txt"), "w").write(ptxas)
    return ptxas, ptx


def cuda_resources(cmds, workdir):
    """ptxas -v of the CUDA twins (lib/kernels/*_cuda.cu), compiled as the build does."""
    os.makedirs(workdir, exist_ok=True)
    text = ""
    for src, directory, argv in cmds:
        obj = os.path.join(workdir, os.path.basename(src) + ".o")
        text += run(argv + ["-Xptxas", "-v", "-c", src, "-o", obj], directory)
    open(os.path.join(workdir, "ptxas.txt"), "w").write(text)
    return parse_ptxas(text)


def build_variant(build):
    """The variant a build is configured as: lto when its kernels compile with -foffload-lto."""
    for e in json.load(open(os.path.join(build, "compile_commands.json"))):
        if re.search(r"lib/kernels/\w+_omp\.cpp$", e["file"]):
            return "lto" if "-foffload-lto" in shlex.split(e["command"]) else "per-tu"
    die(f"no lib/kernels/*_omp.cpp in {build}/compile_commands.json")


def check(rows):
    """The code-generation properties every omp kernel must keep; returns the problems."""
    problems = []
    for r in rows:
        where = f"{r['kernel']} (line {r['line']}, {r['variant']})"
        if r.get("exec_mode") not in ("spmd", "generic-spmd"):
            problems.append(f"{where}: {r.get('exec_mode')} mode, not SPMD (see -Rpass-analysis=openmp-opt)")
        if r.get("state_machine"):
            problems.append(f"{where}: keeps the generic-mode state machine")
        if r.get("spill", 0) > 0:
            problems.append(f"{where}: spills {r['spill']} bytes of registers")
        if r["kernel"] == "gemm" and r.get("smem", 0) == 0:
            problems.append(f"{where}: no team-shared memory (the tiles are not in shared memory)")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/gpu")
    ap.add_argument("--variants", help="comma list (default: all four; with --check, the build's)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a kernel is not SPMD, keeps a state machine, spills, or gemm has no shared memory")
    ap.add_argument("--csv", action="store_true", help="CSV rows instead of a table")
    ap.add_argument("--no-cuda", dest="cuda", action="store_false",
                    help="leave out the CUDA twins (by default their ptxas figures come last, variant cuda)")
    ap.add_argument("--keep", help="keep the objects, PTX and ptxas output in this directory")
    a = ap.parse_args()
    if a.variants is None:
        a.variants = build_variant(a.build) if a.check else ",".join(VARIANTS)
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            die(f"unknown variant '{v}' (known: {', '.join(VARIANTS)})")
    cmds = compile_commands(a.build, r"lib/kernels/\w+_omp\.cpp$")
    if not cmds:
        die(f"no lib/kernels/*_omp.cpp in {a.build}/compile_commands.json")
    if not any(x.startswith("--offload-arch=") for x in cmds[0][2]):
        die(f"{a.build} is not a GPU build (no --offload-arch= on its command lines; use cmake --preset gpu)")
    top = a.keep or tempfile.mkdtemp(prefix="ompml-offload-")
    try:
        report(a, variants, cmds, top)
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)


def report(a, variants, cmds, top):
    """Compiles the variants (and the CUDA twins) in top, then prints, or checks, the figures."""
    rows = []
    for v in variants:
        print(f"offload_resources.py: compiling {len(cmds)} files, variant {v}", file=sys.stderr)
        ptxas_text, ptx_text = compile_variant(v, VARIANTS[v], cmds, os.path.join(top, v))
        res, ptx = parse_ptxas(ptxas_text), parse_ptx(ptx_text)
        for sym in sorted(set(res) & set(ptx), key=short_name):
            kernel, line = short_name(sym)
            rows.append({"variant": v, "kernel": kernel, "line": line, **ptx[sym], **res[sym]})
    if a.check:
        problems = check(rows)
        for p in problems:
            print(f"offload_resources.py: check: {p}", file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f"offload_resources.py: check: {len(rows)} kernels ({a.variants}): all SPMD, no state machine, "
              f"no spills, gemm tiles in shared memory")
        return
    cuda = compile_commands(a.build, r"lib/kernels/\w+_cuda\.cu$")
    if a.cuda and cuda:
        print(f"offload_resources.py: compiling {len(cuda)} CUDA files", file=sys.stderr)
        for sym, r in sorted(cuda_resources(cuda, os.path.join(top, "cuda")).items(), key=lambda x: short_name(x[0])):
            rows.append({"variant": "cuda", "kernel": short_name(sym)[0], **r})
    elif a.cuda:
        print("offload_resources.py: note: the build has no CUDA sources (nvcc not found?)", file=sys.stderr)
    if a.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") for c in COLUMNS])
    else:
        print(" ".join(f"{c:>13}" if i > 1 else f"{c:<14}" for i, c in enumerate(COLUMNS)))
        for r in rows:
            print(" ".join(f"{str(r.get(c, '')):>13}" if i > 1 else f"{str(r.get(c, '')):<14}"
                           for i, c in enumerate(COLUMNS)))


if __name__ == "__main__":
    main()
