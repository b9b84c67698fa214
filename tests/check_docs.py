"""The docs against the programs (issue 25): every flag the docs name exists in the --help of the
program it belongs to, so the docs cannot drift from the programs; and every table is whole (a
header, its separator row, rows of as many cells), so no paragraph splits one.

  check_docs.py BIN_DIR REPO_DIR

Reads README.md, jobs/README.md, data/README.md and docs/**/*.md. In a command (a line of a code
block, or a code span) a flag (`--name`) belongs to the program named last before it: in
`mpirun --bind-to none ompml-train --epochs 2`, --bind-to is mpirun's and --epochs ompml-train's;
after a bare `--` (tools/scaling.sh ... -- ARGS) and in a command that names no program it belongs
to any ompml program. A flag in prose belongs to any ompml program, to a program its paragraph (a
list item, a table row) or the paragraphs beside it name, or to another program's listed flags.
What a program has:
  ompml-X        the names its --help lists (ompml-data: and each subcommand's --help)
  jobs/ scripts  those of the ompml program they pass their arguments to (JOBS below)
  tools/X.py     its argparse add_argument names; tools/X.sh: its `--name)` case labels
  others         (mpirun, sbatch, ctest ...) the few flags of theirs the docs use (FOREIGN below)
Prints one line per flag not found (file:line, flag, program) and per broken table row, and exits 1.
It first checks itself on planted docs, so that a check that finds nothing fails the run.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

OMPML = ["train", "eval", "data", "bench", "scale", "predict"]
# The ompml program each job script passes its own arguments to (None: it takes none).
JOBS = {"jobs/train.sbatch": "ompml-train", "jobs/train-multinode.sbatch": "ompml-train",
        "jobs/cpu.sbatch": "ompml-train", "jobs/sweep.sbatch": "ompml-train", "jobs/bench.sbatch": "ompml-bench",
        "jobs/scaling.sbatch": "tools/scaling.sh", "jobs/local/train-1node.sh": "ompml-train",
        "jobs/sweep-gather.sh": None}
# Other programs' flags as the docs use them (their own manuals document them).
FOREIGN = {
    "mpirun": {"--bind-to", "--oversubscribe", "--map-by", "--report-bindings", "--host", "--mca"},
    "srun": {"--mpi", "--ntasks-per-node", "--cpus-per-task", "--gpus-per-node", "--gpus", "--nodes", "--cpu-bind"},
    "sbatch": {"--signal", "--requeue", "--no-requeue", "--partition", "--parsable", "--account", "--job-name", "--dependency",
               "--open-mode", "--gres", "--nodes", "--ntasks-per-node", "--cpus-per-task", "--gpus-per-node",
               "--gpus", "--time", "--array", "--output", "--export", "--mem", "--exclusive"},
    "scancel": {"--signal", "--batch"},
    "ctest": {"--preset", "--repeat", "--output-on-failure", "--test-dir"},
    "cmake": {"--preset", "--build", "--target", "--fresh", "--install"},
    "clang": {"--offload-arch", "--offload-device-only", "--libomptarget-nvptx-bc-path", "--cuda-path"},
    "nvcc": {"--ptxas-options", "--resource-usage"},
    "nsys": {"--trace", "--output", "--stats", "--report"},
    "test_kernels": {"--gpu-only"},  # tests/test_kernels.cpp's own argument
}
FOREIGN_WORDS = {"mpirun": "mpirun", "mpiexec": "mpirun", "srun": "srun", "sbatch": "sbatch", "#SBATCH": "sbatch",
                 "salloc": "sbatch", "scancel": "scancel", "ctest": "ctest", "cmake": "cmake", "clang++-19": "clang",
                 "clang-19": "clang", "clang++": "clang", "nvcc": "nvcc", "nsys": "nsys", "test_kernels": "test_kernels"}

COMMAND = (r"ompml-(?:" + "|".join(OMPML) + r")(?![\w-]|\.\w)|tools/[\w-]+\.(?:py|sh)|jobs/(?:local/)?[\w-]+\.(?:sbatch|sh)"
           r"|#SBATCH|(?<![\w/.-])(?:" + "|".join(re.escape(w) for w in FOREIGN_WORDS if w != "#SBATCH") +
           r")(?![\w.+-])")
FLAG = r"(?<![\w-])--(?:[a-z][a-z0-9-]*)?(?![\w-])"
WORD = re.compile(COMMAND + "|" + FLAG)
HELP_NAMES = re.compile(r"^\s+((?:-{1,2}[\w-]+,)*-{1,2}[\w-]+)")


def help_names(text):
    names = set()
    for line in text.splitlines():
        m = HELP_NAMES.match(line)
        if m:
            names.update(n for n in m.group(1).split(",") if n.startswith("--"))
    return names


def ompml_flags(bin_dir, prog):
    def run(*args):
        cmd = [os.path.join(bin_dir, "ompml-" + prog), *args, "--help"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout
    text = run()
    names = help_names(text)
    sub = re.search(r"^Subcommands:\n((?:  .*\n?)+)", text, re.M | re.I)
    for line in sub.group(1).splitlines() if sub else []:
        names |= help_names(run(line.split()[0]))
    return names


def tool_flags(repo, tool):
    path = os.path.join(repo, tool)
    if not os.path.exists(path):
        return None
    src = open(path, encoding="utf-8").read()
    if tool.endswith(".py"):
        calls = re.findall(r"add_argument\(([^)]*)", src)
        names = {n for c in calls for n in re.findall(r"[\"'](--[\w-]+)[\"']", c)}
    else:
        labels = re.findall(r"^\s*(-[-\w]*(?:\s*\|\s*-[-\w]*)*)\s*\)", src, re.M)
        names = {n.strip() for label in labels for n in label.split("|")}
    return {n for n in names if n.startswith("--")}


class Flags:
    def __init__(self, bin_dir, repo):
        self.bin_dir, self.repo, self.cache = bin_dir, repo, {}
        self.ompml = set().union(*(self.of("ompml-" + p) for p in OMPML))

    def of(self, command):
        """The flags of a command word; None for a tool or job script that does not exist."""
        if command not in self.cache:
            if command.startswith("ompml-"):
                names = ompml_flags(self.bin_dir, command[len("ompml-"):])
            elif command.startswith("tools/"):
                names = tool_flags(self.repo, command)
            elif command.startswith("jobs/"):
                target = JOBS.get(command, "?")
                names = set() if target is None else None if target == "?" else self.of(target)
            else:
                names = FOREIGN[FOREIGN_WORDS[command]]
            self.cache[command] = None if names is None else names | {"--help"}
        return self.cache[command]


def blocks(lines):
    """(is code, [(line number, text)]): indented or fenced code blocks, and prose paragraphs,
    list items and table rows."""
    block, code, fenced = [], False, False
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            if block:
                yield code, block
            block, code, fenced = [], True, not fenced
            continue
        is_code = fenced or (line.startswith("    ") and (code or not block))
        new = (not line.strip() or line.lstrip().startswith(("- ", "* ", "|", "#")) or
               re.match(r"\s*\d+\. ", line) or is_code != code)
        if new and block and not fenced:
            yield code, block
            block = []
        if line.strip() or fenced:
            if not block:
                code = is_code
            block.append((no, line))
    if block:
        yield code, block


def pieces(code, block):
    """(line number, text, is a command) of a block: each shell command of a code block (lines
    joined at trailing backslashes, split at pipes, &&, ; and $( ); each code span of prose, and
    the prose around them."""
    if code:
        out, joined, first = [], "", None
        for no, text in block:
            first = first or no
            joined += text.rstrip().rstrip("\\") + " "
            if not text.rstrip().endswith("\\"):
                out += [(first, c, True) for c in re.split(r"\|\|?|&&|;|\$\(", joined)]
                joined, first = "", None
        return out
    text = "\n".join(t for _, t in block)
    line_of = lambda pos: block[0][0] + text.count("\n", 0, pos)
    out = [(line_of(m.start()), m.group(1), True) for m in re.finditer(r"`([^`]*)`", text)]
    prose = re.sub(r"`[^`]*`", lambda m: "\n" * m.group(0).count("\n"), text)
    return out + [(block[0][0] + i, t, False) for i, t in enumerate(prose.split("\n"))]


def check_file(path, flags, problems):
    rel = os.path.relpath(path, flags.repo)
    parts = list(blocks(open(path, encoding="utf-8").read().splitlines()))
    names = [{m.group(0) for _, t in block for m in re.finditer(COMMAND, t)} for _, block in parts]
    for i, (code, block) in enumerate(parts):
        for c in sorted(names[i]):
            if flags.of(c) is None:
                problems.append(f"{rel}:{block[0][0]}: {c} does not exist (or is missing from JOBS)")
        # Outside a command: the programs this block and its neighbours name ("X, run as:" then
        # a code block; a code block, then "`--flag` of it ..."), every ompml program, and the
        # other programs' flags listed above.
        near = names[i].union(*names[max(i - 1, 0):i + 2])
        loose = flags.ompml.union(*FOREIGN.values(), *(flags.of(c) or set() for c in near))
        for no, text, command in pieces(code, block):
            owner = None
            for m in WORD.finditer(text):
                word = m.group(0)
                if word == "--":
                    owner = None  # what follows goes on to an ompml program
                elif not word.startswith("--"):
                    owner = word if command else None
                elif word not in (flags.of(owner) or set() if owner else loose):
                    where = owner or "any ompml program" + (" or " + ", ".join(sorted(near)) if near else "")
                    problems.append(f"{rel}:{no}: {word} is no flag of {where}")


def cells(row):
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def check_tables(path, rel, problems):
    """A table: consecutive lines starting with `|` outside fenced code, its second a separator
    row, every other row as many cells as the header."""
    lines = open(path, encoding="utf-8").read().splitlines()
    fenced, i = False, 0
    while i < len(lines):
        fenced ^= lines[i].startswith("```")
        if fenced or not lines[i].startswith("|"):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        table = lines[start:i]
        if len(table) < 2 or not re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", table[1].strip()):
            problems.append(f"{rel}:{start + 1}: a table row without a header and separator row above it "
                            "(cut off from its table?)")
            continue
        for no, row in enumerate(table[2:], start + 3):
            if cells(row) != cells(table[0]):
                problems.append(f"{rel}:{no}: a table row of {cells(row)} cells under a header of {cells(table[0])}")


# Planted docs and the problems the check must find in them, no more.
PLANTED = """# Planted

    mpirun --bind-to none ompml-train --epochs 2 --no-such-flag
    ompml-eval --checkpoint c.h5 --epochs 2

Prose names `--also-missing` and `--epochs`, and `tools/no_such_tool.py`.

| kernel | ms |
| --- | --- |
| gemm | 1 |

A paragraph, then the row cut off from its table:
| axpy | 2 |
"""
PLANTED_FINDS = ["README.md:3: --no-such-flag is no flag of ompml-train", "README.md:4: --epochs is no flag of ompml-eval",
                 "README.md:6: tools/no_such_tool.py does not exist", "README.md:6: --also-missing is no flag of",
                 "README.md:13: a table row without a header"]


def self_test(bin_dir):
    with tempfile.TemporaryDirectory() as repo:
        with open(os.path.join(repo, "README.md"), "w", encoding="utf-8") as f:
            f.write(PLANTED)
        flags, problems = Flags(bin_dir, repo), []
        check_file(os.path.join(repo, "README.md"), flags, problems)
        check_tables(os.path.join(repo, "README.md"), "README.md", problems)
    missed = [w for w in PLANTED_FINDS if not any(p.startswith(w) for p in problems)]
    extra = [p for p in problems if not any(p.startswith(w) for w in PLANTED_FINDS)]
    if missed or extra:
        sys.exit("check_docs: self-test on planted docs: missed " + repr(missed) + ", found more " + repr(extra))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    self_test(sys.argv[1])
    flags = Flags(sys.argv[1], os.path.abspath(sys.argv[2]))
    docs = [os.path.join(flags.repo, p) for p in ["README.md", "jobs/README.md", "data/README.md"]]
    docs += sorted(glob.glob(os.path.join(flags.repo, "docs", "**", "*.md"), recursive=True))
    problems = []
    for path in docs:
        check_file(path, flags, problems)
        check_tables(path, os.path.relpath(path, flags.repo), problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check_docs: {len(problems)} problems: flags not in their program's --help, or broken tables")
        return 1
    print(f"check_docs: every flag named in {len(docs)} docs is in its program's --help; every table is whole")
    return 0


if __name__ == "__main__":
    sys.exit(main())
