// ompml-bench: times the kernels of one or more backends on the same inputs.
//
//   ompml-bench --backend omp --kernel gemm --m 1024 --n 1024 --k 1024 --csv
//   ompml-bench --compare omp,ref --kernel all
//
// Every result is first checked against the ref backend (--no-check skips that), then each
// kernel runs --warmup-runs untimed and --reps timed times; min/avg/max are printed with FLOP and
// byte counts from each kernel's record (lib/bench/kernel.hpp). Anchors measured in the same
// run give ratios from one CSV: OpenBLAS cblas_sgemm for gemm (when the build found OpenBLAS)
// and a plain `#pragma omp parallel for` host loop for scale and normalize_u8; cuBLAS SGEMM for
// gemm (builds with cuBLAS, when a CUDA device is present): the GPU upper anchor
// (lib/bench/anchor.hpp). The OpenBLAS anchor names the core (kernel set) and threads it ran
// (an `openblas` header line, a `# openblas:` CSV comment) and warns when OPENBLAS_CORETYPE
// forces a core below what the CPU supports (lib/bench/openblas_core.hpp): run the anchor with
// it unset. --no-anchors times the backends alone: a backend's runs alternate with the
// anchor's, whose threads (OpenBLAS's workers spin after each call) share the cores with them,
// which moves a backend's mean run, though hardly its best (min) one.
// --precision bf16 runs gemm on bf16 operands (converted once, untimed; float accumulation),
// checked against ref's bf16 gemm, with the fp32 anchors on the same bf16-valued inputs (rows
// "gemm_bf16", "openblas-fp32"), and train_step with MlpConfig::precision = bf16.
// train_step is a pseudo-kernel: one whole training step of an Mlp (--layers, batch = --m,
// default 128) with Adam: forward + loss_backward + optimizer step on a fixed device batch.
// peak_pct, ratio and max_diff: lib/bench/bench.hpp. This file only turns flags into
// BenchOptions; the bench itself is lib/bench.
#include "app/cli.hpp"
#include "bench/bench.hpp"
#include "core/precision.hpp"
#include "nn/mlp.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

using namespace ompml;
using namespace ompml::bench;

int main(int argc, char** argv)
{
    CLI::App app{"ompml-bench: time ompml kernels per backend, checked against the ref backend"};
    app.option_defaults()->always_capture_default(); // --help shows every default
    BenchOptions o;
    Problem& p = o.problem;
    std::string backends = "omp", compare, kernels = "all", layers = "784,512,256,10";
    bool csv = false, no_check = false, no_anchors = false;

    std::string known_backends, known_kernels;
    for (const auto& n : available_backends()) known_backends += (known_backends.empty() ? "" : ", ") + n;
    for (const auto& n : kernel_names()) known_kernels += (known_kernels.empty() ? "" : ", ") + n;
    auto* be_opt = app.add_option("--backend", backends, "backend(s), comma list (" + known_backends + ")");
    app.add_option("--compare", compare, "A,B: run both on the same inputs, add ratio = time(B) / time(row)")
        ->excludes(be_opt);
    app.add_option("--kernel", kernels, "kernel(s), comma list, or all: " + known_kernels);
    auto* m_opt =
        cli::add_int(app, "--m", p.m, "gemm M; rows of the row/column kernels and softmax batch", 1, 1LL << 30);
    cli::add_int(app, "--n", p.n, "gemm N; cols of the row/column kernels and softmax classes", 1, 1LL << 30);
    app.add_option("--layers", layers, "train_step model widths (relu MLP, Adam; batch = --m, default 128)");
    cli::add_int(app, "--k", p.k, "gemm K", 1, 1LL << 30);
    cli::add_int(app, "--len", p.len, "length of the vector kernels (elements)", 1, 1LL << 34);
    // Was --warmup, which names the learning-rate warmup in ompml-train: kept as an alias.
    cli::add_int(app, "--warmup-runs,--warmup", o.warmup,
                 "untimed runs per kernel and backend (--warmup: the old name, until the next release)", 0, 1000000);
    cli::add_int(app, "--reps", o.reps, "timed runs per kernel and backend", 1, 1000000);
    std::string precision = "fp32";
    app.add_option("--precision", precision,
                   "fp32 | bf16: operands of gemm and train_step (bf16 rows are named <kernel>_bf16; "
                   "the gemm anchors stay fp32)");
    app.add_flag("--csv", csv, "print CSV instead of a table");
    app.add_flag("--no-check", no_check, "skip the check against the ref backend");
    app.add_flag("--no-anchors", no_anchors,
                 "time the backends alone, without the anchors (whose threads, e.g. OpenBLAS's spinning "
                 "workers, share the cores with the runs they alternate with)");
    app.add_option("--peak-gbs", o.peak_gbs, "GPU DRAM bandwidth peak for peak_pct (default: from the CUDA device)")
        ->check(cli::kPositive)
        ->default_str(""); // none: from the device
    app.add_option("--peak-gflops", o.peak_gflops, "GPU FP32 peak for peak_pct (default: from the CUDA device)")
        ->check(cli::kPositive)
        ->default_str("");

    if (const auto rc = cli::parse(app, argc, argv, "ompml-bench")) return *rc;
    cli::note_renamed(argc, argv, "--warmup", "--warmup-runs", "ompml-bench", true);

    try {
        o.compare = !compare.empty();
        o.backends = split_list(o.compare ? compare : backends);
        o.kernels = split_list(kernels);
        o.check = !no_check;
        o.anchors = !no_anchors;
        p.layers = parse_layers(layers);
        p.precision = parse_enum<Precision>(precision);
        p.batch = m_opt->count() ? p.m : 128;
        const Report r = run_bench(o, std::cerr);
        if (csv)
            print_csv(r, std::cout);
        else
            print_table(r, std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "ompml-bench: error: " << e.what() << "\n";
        return 1;
    }
}
