// ompml-bench as a library: time the kernel records (kernel.hpp) on one or more backends and
// their anchors (anchor.hpp), on the same inputs, and print the rows as CSV or a table.
//
// Every result is first checked against the ref backend (check = false skips that), then
// each kernel runs `warmup` untimed and `reps` timed times per backend and anchor, interleaved
// (rep 1 of each, rep 2 of each, ...); min/avg/max are reported with FLOP and byte counts from
// the kernel's record. A backend whose kernels ran on host cores is never reported as a GPU
// (Backend::on_gpu()). peak_pct: a GPU row's GB/s (bandwidth-bound kernels) or GFLOP/s
// (gemm, train_step) as a percentage of the device's theoretical peak; NaN for rows on host
// cores. With compare (backends A, B), ratio is time(B) / time(row) and max_diff the normwise
// relative difference between A's and B's results, max |A - B| / max |B| per output (it needs
// no reference, so it is computed with check = false too). Without compare, ratio is
// time(anchor) / time(row) against the kernel's first anchor that ran.
#pragma once

#include "bench/kernel.hpp"

#include <cmath>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ompml::bench {

struct BenchOptions {
    std::vector<std::string> backends{"omp"}; // --backend; with compare, exactly A and B
    bool compare = false;
    std::vector<std::string> kernels{"all"}; // names of kernel records, or "all"
    Problem problem;
    int warmup = 2, reps = 10;
    bool check = true;                        // against the ref backend, before any timing
    bool anchors = true;                      // false: the backends timed alone, no anchor rows
    double peak_gbs = 0.0, peak_gflops = 0.0; // > 0: override the CUDA device's peaks
};

struct Row {
    std::string kernel, backend;
    Dims dims;
    double bytes = 0, flops = 0, min_ms = 0, avg_ms = 0, max_ms = 0;
    double err = NAN;      // max_rel_err against ref; NaN when not checked
    double peak_pct = NAN; // NaN on host cores or where the peak is unknown
    double ratio = NAN;    // time(baseline) / time(this row); NaN without a baseline
    bool baseline = false; // this row is its kernel's baseline
    double diff = NAN;     // compare: A against B, NaN otherwise
};

// The rows and what the header lines say about them.
struct Report {
    std::vector<Row> rows;
    std::map<std::string, std::string> device;             // backend or anchor -> where it ran
    std::string peak;                                      // the `# peak:` text
    std::vector<std::pair<std::string, std::string>> info; // anchor -> its own line (`# openblas:`)
    std::string baseline_name;                             // compare: B; else "" (the anchors)
    int warmup = 0, reps = 0;
};

// Checks (throwing Error on the first mismatch, before anything is timed), then times.
// Notes and warnings (an anchor below its best, a skipped anchor) go to `log`.
Report run_bench(const BenchOptions& o, std::ostream& log);
void print_csv(const Report& r, std::ostream& out);
void print_table(const Report& r, std::ostream& out);

// "all" and every record's name, in order (for --help and error messages).
std::vector<std::string> kernel_names();
// "a,b,,c" -> {a, b, c}
std::vector<std::string> split_list(const std::string& s);
// max over parts of max_i |got - ref| / max_i |ref| (normwise: no blow-up where ref ~ 0); a NaN
// anywhere in got is infinitely far.
double max_rel_err(const Result& got, const Result& ref);

} // namespace ompml::bench
