// The bench as a library (lib/bench), without running ompml-bench: the kernel records' counts
// against figures written out by hand (and printed by the bench before its records existed:
// docs/results/host.md), every anchor a record names known to the factory, and run_bench's rows
// and printers at small sizes on the omp backend.
#define BOOST_TEST_MODULE bench
#include "bench/anchor.hpp"
#include "bench/bench.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <set>
#include <sstream>

using namespace ompml;
using namespace ompml::bench;

namespace {

const Kernel& kernel(const std::string& name)
{
    for (const auto& k : all_kernels())
        if (name == k.name) return k;
    BOOST_FAIL("no kernel record '" << name << "'");
    throw;
}

Problem small()
{
    Problem p;
    p.m = 33, p.n = 17, p.k = 9, p.len = 1001;
    p.layers = {784, 512, 256, 10};
    p.batch = 128;
    return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(records_are_complete_and_named_once)
{
    std::set<std::string> names;
    for (const auto& k : all_kernels()) {
        BOOST_TEST_CONTEXT("kernel " << k.name)
        {
            BOOST_TEST(names.insert(k.name).second);
            BOOST_TEST((k.dims && k.flops && k.bytes && k.tolerance && k.prepare));
            BOOST_TEST((k.anchors.empty() || k.prepare_anchor != nullptr));
            for (const char* a : k.anchors) {
                std::string why;
                BOOST_CHECK_NO_THROW(make_anchor(a, &why)); // known by name, built or not
            }
            const Dims d = k.dims(small());
            BOOST_TEST(k.tolerance(d) >= 0.0);
        }
    }
    const std::vector<std::string> order{"all",
                                         "gemm",
                                         "activation_relu",
                                         "activation_gelu",
                                         "col_sum",
                                         "softmax_xent",
                                         "normalize_u8",
                                         "fill",
                                         "sum_squares",
                                         "sgd",
                                         "adam",
                                         "train_step"};
    BOOST_TEST(kernel_names() == order, boost::test_tools::per_element());
    BOOST_CHECK_THROW(make_anchor("nope", nullptr), Error);
}

// Shapes, FLOPs and bytes at --m 33 --n 17 --k 9 --len 1001 (train_step: the quick-start model
// at batch 128), as ompml-bench printed them before the records (the same counting rules).
BOOST_AUTO_TEST_CASE(counts_per_kernel)
{
    struct Want {
        const char* name;
        long long m, n, k;
        double bytes, flops;
    };
    const Want want[] = {
        {"gemm", 33, 17, 9, 4044, 10098}, // 4 (mk + kn + mn), 2 mnk
        {"activation_relu", 1001, 1, 1, 12012, 1001},
        {"activation_gelu", 1001, 1, 1, 12012, 14014},
        {"col_sum", 33, 17, 1, 2312, 561},       // 4 mn + 4 n
        {"softmax_xent", 33, 17, 1, 4620, 3366}, // 8 mn + 4 m
        {"normalize_u8", 1001, 1, 1, 5005, 2002},
        {"fill", 1001, 1, 1, 4004, 0},
        {"sum_squares", 1001, 1, 1, 4004, 2002},
        {"sgd", 1001, 1, 1, 20020, 6006},
        {"adam", 1001, 1, 1, 28028, 15015},
        {"train_step", 128, 535818, 1, 21432720, 411508224}, // 40 per parameter, 6 x batch x params
    };
    for (const Want& w : want) {
        const Kernel& k = kernel(w.name);
        const Dims d = k.dims(small());
        BOOST_TEST_CONTEXT("kernel " << w.name)
        {
            BOOST_TEST(d.m == w.m);
            BOOST_TEST(d.n == w.n);
            BOOST_TEST(d.k == w.k);
            BOOST_TEST(k.bytes(d) == w.bytes);
            BOOST_TEST(k.flops(d) == w.flops);
        }
    }
    Problem big = small();
    big.m = 100000, big.n = 100000;
    BOOST_CHECK_THROW(kernel("col_sum").dims(big), Error); // m * n beyond an int
}

BOOST_AUTO_TEST_CASE(max_rel_err_is_normwise)
{
    BOOST_TEST(max_rel_err({{1.0, 2.0}}, {{1.0, 2.0}}) == 0.0);
    BOOST_TEST(max_rel_err({{1.0, 2.5}}, {{1.0, 2.0}}) == 0.25);    // 0.5 / max|ref| = 2
    BOOST_TEST(max_rel_err({{0.5}, {4.0}}, {{0.0}, {4.0}}) == 0.5); // ref all 0: absolute
    BOOST_TEST(std::isinf(max_rel_err({{NAN}}, {{1.0}})));
}

// run_bench end to end at small sizes: checked rows for every kernel on omp (and its anchors),
// the parallel-for anchor as normalize_u8's baseline, and both printers.
BOOST_AUTO_TEST_CASE(run_bench_checks_and_prints)
{
    BenchOptions o;
    o.kernels = {"gemm", "normalize_u8", "softmax_xent"};
    o.problem = small();
    o.warmup = 0, o.reps = 2;
    std::ostringstream log;
    const Report r = run_bench(o, log);
    std::set<std::string> seen;
    for (const Row& row : r.rows) {
        seen.insert(row.kernel + "/" + row.backend);
        BOOST_TEST_CONTEXT(row.kernel << " on " << row.backend)
        {
            BOOST_TEST(row.err <= kernel(row.kernel).tolerance(row.dims)); // checked, and within
            BOOST_TEST(row.min_ms <= row.avg_ms);
            BOOST_TEST(row.avg_ms <= row.max_ms);
            // Host cores: never a GPU figure; flops-bound rows against the host's measured FMA
            // peak (a share, not bounded by 100 here: a loaded machine can lower the peak's run).
            if (kernel(row.kernel).bound == Bound::flops)
                BOOST_TEST((std::isfinite(row.peak_pct) && row.peak_pct > 0.0));
            else
                BOOST_TEST(std::isnan(row.peak_pct));
        }
        if (row.kernel == "normalize_u8") BOOST_TEST(row.baseline == (row.backend == "omp-parallel-for"));
    }
    BOOST_TEST(seen.count("gemm/omp") == 1);
    BOOST_TEST(seen.count("normalize_u8/omp") == 1);
    BOOST_TEST(seen.count("normalize_u8/omp-parallel-for") == 1);
    BOOST_TEST(seen.count("softmax_xent/omp") == 1);
    BOOST_TEST(r.device.count("omp") == 1);

    std::ostringstream csv, table;
    print_csv(r, csv);
    print_table(r, table);
    BOOST_TEST(csv.str().find("# device: ") == 0);
    BOOST_TEST(
        csv.str().find("\nkernel,backend,m,n,k,bytes,flops,min_ms,avg_ms,max_ms,gflops,gbs,max_rel_err,peak_pct\n") !=
        std::string::npos);
    BOOST_TEST(csv.str().find("\nnormalize_u8,omp,1001,1,1,5005,2002,") != std::string::npos);
    BOOST_TEST(table.str().find("timing  0 warm-up run(s) dropped, 2 timed") != std::string::npos);
    // The header names the omp gemm's host path for bf16 operands and the measured peak.
    BOOST_TEST(csv.str().find("\n# host_gemm: bf16 operands on ") != std::string::npos);
    BOOST_TEST(csv.str().find("\n# host_peak: fp32 FMA ") != std::string::npos);

    // --no-anchors: the same kernels, the backends' rows alone (no baseline, no ratio).
    BenchOptions alone = o;
    alone.anchors = false;
    const Report ra = run_bench(alone, log);
    BOOST_TEST(ra.rows.size() == 3u);
    for (const Row& row : ra.rows) {
        BOOST_TEST(row.backend == "omp");
        BOOST_TEST(!row.baseline);
        BOOST_TEST(std::isnan(row.ratio));
    }

    BenchOptions bad = o;
    bad.compare = true;
    bad.backends = {"omp"};
    BOOST_CHECK_THROW(run_bench(bad, log), Error);
    bad.kernels = {"nope"};
    BOOST_CHECK_THROW(run_bench(bad, log), Error);
}
