// run_bench, print_csv, print_table (bench.hpp): walks the kernel records; knows no kernel by
// name and no anchor by build.
#include "bench/bench.hpp"

#include "backend/subnormals.hpp"
#include "bench/anchor.hpp"
#include "bench/host_peak.hpp"
#include "core/check.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"
#include "kernels/gemm.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>

namespace ompml::bench {
namespace {

std::string fmt(double v, int prec = 3)
{
    if (std::isnan(v)) return "nan";
    char b[64];
    std::snprintf(b, sizeof b, "%.*g", prec + 3, v);
    return b;
}

__attribute__((format(printf, 1, 2))) std::string format(const char* f, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(b, sizeof b, f, ap);
    va_end(ap);
    return b;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ")
{
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

std::vector<const Kernel*> select_kernels(const std::vector<std::string>& names)
{
    std::vector<const Kernel*> out;
    for (const auto& name : names) {
        if (name == "all") {
            for (const auto& k : all_kernels()) out.push_back(&k);
            continue;
        }
        const auto& all = all_kernels();
        const auto it = std::find_if(all.begin(), all.end(), [&](const Kernel& k) { return name == k.name; });
        require(it != all.end(), "unknown kernel '" + name + "' (known: " + join(kernel_names()) + ")");
        out.push_back(&*it);
    }
    require(!out.empty(), "--kernel is empty");
    return out;
}

// A backend's or an anchor's run of one kernel, checked and ready to time.
struct Job {
    std::string name;
    std::string label; // "gemm omp": the NVTX range of each timed run (nsys names them)
    Prepared run;
    std::function<void()> sync; // waits for queued device work
    bool gpu = false;           // ran on a GPU (counts against the device's peak)
    bool bf16 = false;          // multiplied bf16 operands (an anchor's "-fp32" rows do not)
    double err = NAN;           // against ref; NaN when not checked
};

// Times the jobs of one kernel side by side: warm-up runs of each, then the timed runs
// round-robin (rep 1 of every job, rep 2 of every job, ...), so load from other processes on a
// shared machine falls on all of them alike rather than on whichever ran last.
std::vector<std::vector<double>> time_jobs(const std::vector<Job>& jobs, int warmup, int reps)
{
    for (const auto& j : jobs) {
        for (int i = 0; i < warmup; ++i) j.run.once();
        j.sync();
    }
    std::vector<std::vector<double>> ms(jobs.size());
    for (int i = 0; i < reps; ++i)
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            const trace::Span range(jobs[j].label.c_str()); // outside the timing
            Stopwatch sw;
            jobs[j].run.once();
            jobs[j].sync();
            ms[j].push_back(sw.millis());
        }
    return ms;
}

// One run of the bench: the options, the backends and anchors it made, the peak, the report.
class Bench {
public:
    Bench(const BenchOptions& o, std::ostream& log) : o_(o), log_(log)
    {
        rep_.warmup = o.warmup;
        rep_.reps = o.reps;
        const std::string given = join(o.backends, ",");
        require(!o.backends.empty(), "no backend given");
        require(!o.compare || o.backends.size() == 2, "--compare takes exactly two backends, A,B; got '" + given + "'");
        require(!o.compare || o.backends[0] != o.backends[1],
                "--compare needs two different backends; got '" + given + "'");
        if (o.compare) rep_.baseline_name = o.backends[1];
        for (const auto& n : o.backends) backends_.push_back(make_backend(n)); // throws on an unknown name
        ref_ = make_backend("ref");
        for (const auto& b : backends_) {
            // on_gpu() is true only where kernels ran on a GPU (never on the host fallback or
            // the offload-check build's virtual x86 device).
            std::string d = b->device();
            if (std::string(b->name()) != "ref") d += b->on_gpu() ? " [GPU]" : " [host cores, not a GPU]";
            rep_.device[b->name()] = d;
        }
        // --peak-gbs/--peak-gflops where given, else the GPU's own (gpu_peak), else unknown.
        peak_ = {o.peak_gbs, o.peak_gflops};
        std::string source = "--peak-gbs/--peak-gflops";
        if (o.peak_gbs <= 0.0 || o.peak_gflops <= 0.0) {
            const GpuPeak d = gpu_peak();
            if (d.gbs > 0.0) {
                if (peak_.gbs <= 0.0) peak_.gbs = d.gbs;
                if (peak_.gflops <= 0.0) peak_.gflops = d.gflops;
                source = "CUDA device 0 attributes";
            }
        }
        rep_.peak = peak_.gbs > 0.0 || peak_.gflops > 0.0
            ? fmt(peak_.gbs, 4) + " GB/s, " + fmt(peak_.gflops, 4) + " GFLOP/s FP32 (" + source + ")"
            : "unknown (no CUDA device; --peak-gbs, --peak-gflops)";
        // The path of the omp gemm's bf16 operands on host cores (OMPML_HOST_GEMM; an Error here,
        // before anything runs, where it names a path this CPU lacks).
        for (const auto& b : backends_)
            if (std::string(b->name()) == "omp" && !b->on_gpu()) {
                host_path_ = host_gemm_path();
                const char* env = std::getenv("OMPML_HOST_GEMM");
                rep_.info.emplace_back(
                    "host_gemm",
                    std::string("bf16 operands on ") + host_gemm_name(*host_path_) +
                        (env != nullptr && *env != '\0' ? " (OMPML_HOST_GEMM)" : " (the best this CPU has)") +
                        "; fp32 operands on the fp32 micro-kernel");
            }
        rep_.info.emplace_back(
            "subnormals", "on host cores " + subnormals_text(current_subnormals()) + " (OMPML_SUBNORMALS=flush|keep)");
    }

    // The host's measured multiply-add peaks (host_peak.hpp), where a flops-bound kernel may run
    // on host cores: the denominator of those rows' peak_pct.
    void measure_host_peak_for(const std::vector<const Kernel*>& kernels)
    {
        const bool flops =
            std::any_of(kernels.begin(), kernels.end(), [](const Kernel* k) { return k->bound == Bound::flops; });
        const bool host = std::any_of(backends_.begin(), backends_.end(), [](const auto& b) { return !b->on_gpu(); });
        if (!flops || !host) return;
        host_peak_ = measure_host_peak();
        rep_.info.emplace_back("host_peak",
                               "fp32 FMA " + fmt(host_peak_.fp32_gflops, 4) + " GFLOP/s, bf16 dot " +
                                   (host_peak_.bf16_gflops > 0.0 ? fmt(host_peak_.bf16_gflops, 4) + " GFLOP/s"
                                                                 : std::string("none (no AVX512-BF16)")) +
                                   " (register-only loops on " + std::to_string(host_peak_.threads) +
                                   " threads, each thread's best of 25); peak_pct of host rows");
    }

    // The anchors the kernels name, made once, and what they say about themselves (before any
    // figure: a warning when one runs below its best, a note when one cannot run here).
    void make_anchors(const std::vector<const Kernel*>& kernels)
    {
        if (!o_.anchors) return; // --no-anchors: none made, so no kernel has anchor rows
        for (const Kernel* k : kernels)
            for (const char* name : k->anchors) {
                if (anchors_.count(name) != 0) continue;
                std::string why;
                auto& a = anchors_[name] = make_anchor(name, &why);
                if (!a) {
                    if (!why.empty()) log_ << "ompml-bench: note: " << why << "\n";
                    continue;
                }
                rep_.device[a->name()] = a->device();
                if (const std::string info = a->info(); !info.empty()) rep_.info.emplace_back(a->name(), info);
                if (const std::string warn = a->warning(); !warn.empty())
                    log_ << "ompml-bench: warning: " << warn << "\n";
            }
    }

    // Checks every backend and anchor on kernel k (results before timings), then times them.
    void run(const Kernel& k, const Dims& d)
    {
        const Problem& p = o_.problem;
        Result want;
        if (o_.check) {
            const Prepared r = k.prepare(*ref_, p, d);
            r.once();
            want = r.result();
        }
        std::vector<Job> jobs;
        std::map<std::string, Result> got; // results, for max_diff
        auto add = [&](const std::string& name, Prepared run, std::function<void()> sync, bool gpu, bool bf16) {
            Job j{name, row_name(k, d) + " " + name, std::move(run), std::move(sync), gpu, bf16};
            // The compared pair runs once even without the check: max_diff needs no reference.
            if (o_.check || compared(name)) {
                j.run.once();
                j.sync();
                got[name] = j.run.result();
            }
            if (o_.check) {
                j.err = max_rel_err(got[name], want);
                const double tol = k.tolerance(d);
                require(j.err <= tol,
                        row_name(k, d) + " on " + name + " does not match ref: max_rel_err " + fmt(j.err) +
                            " > tolerance " + fmt(tol));
            }
            jobs.push_back(std::move(j));
        };
        for (auto& b : backends_) {
            Backend* bp = b.get();
            add(
                b->name(), k.prepare(*b, p, d), [bp] { bp->synchronize(); }, b->on_gpu(),
                d.precision == Precision::bf16);
        }
        const std::size_t base = o_.compare ? 1 : jobs.size(); // compare: B; else the first anchor
        // An anchor runs in fp32 whatever --precision says (cblas_sgemm, cuBLAS SGEMM): on bf16
        // rows it is named "<anchor>-fp32".
        const bool fp32_anchor = k.takes_precision && d.precision != Precision::fp32;
        for (const char* name : k.anchors)
            if (Anchor* a = anchors_[name].get())
                add(
                    std::string(a->name()) + (fp32_anchor ? "-fp32" : ""), k.prepare_anchor(*a, p, d),
                    [a] { a->synchronize(); }, a->on_gpu(), false);
        const double diff = o_.compare ? max_rel_err(got[o_.backends[0]], got[o_.backends[1]]) : NAN;

        add_rows(k, d, jobs, time_jobs(jobs, o_.warmup, o_.reps), base, diff);
    }

    Report report() { return std::move(rep_); }

private:
    // The rows of kernel k from its jobs' times (ms[j]: job j's timed runs); jobs[base], when
    // there is one, is the baseline of the ratio column.
    void add_rows(const Kernel& k, const Dims& d, const std::vector<Job>& jobs,
                  const std::vector<std::vector<double>>& ms, std::size_t base, double diff)
    {
        const std::size_t first = rep_.rows.size();
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            Row r{row_name(k, d), jobs[j].name, d, k.bytes(d), k.flops(d)};
            const auto [mn, mx] = std::minmax_element(ms[j].begin(), ms[j].end());
            r.min_ms = *mn;
            r.max_ms = *mx;
            for (double t : ms[j]) r.avg_ms += t;
            r.avg_ms /= o_.reps;
            r.err = jobs[j].err;
            const double denom = jobs[j].gpu ? (k.bound == Bound::flops ? peak_.gflops : peak_.gbs)
                : k.bound == Bound::flops    ? host_denominator(jobs[j].bf16)
                                             : 0.0;
            if (denom > 0.0)
                r.peak_pct = 100.0 * (k.bound == Bound::flops ? r.flops : r.bytes) / (r.min_ms * 1e-3) * 1e-9 / denom;
            if (compared(jobs[j].name)) r.diff = diff;
            rep_.rows.push_back(std::move(r));
        }
        if (base < jobs.size()) {
            const double b = rep_.rows[first + base].min_ms;
            for (std::size_t j = first; j < rep_.rows.size(); ++j) rep_.rows[j].ratio = b / rep_.rows[j].min_ms;
            rep_.rows[first + base].baseline = true;
        }
    }

    // A host row's peak: the fp32 FMA rate, or for bf16 operands the rate of the path that
    // multiplied them (VDPBF16PS; AMX tiles were not measured: 0, no peak_pct).
    double host_denominator(bool bf16) const
    {
        if (!bf16 || host_path_ == HostGemm::fp32) return host_peak_.fp32_gflops;
        return host_path_ == HostGemm::avx512bf16 ? host_peak_.bf16_gflops : 0.0;
    }

    bool compared(const std::string& name) const
    {
        return o_.compare && (name == o_.backends[0] || name == o_.backends[1]);
    }

    const BenchOptions& o_;
    std::ostream& log_;
    std::vector<std::unique_ptr<Backend>> backends_;
    std::unique_ptr<Backend> ref_;
    std::map<std::string, std::unique_ptr<Anchor>> anchors_; // null: not in this build or not here
    GpuPeak peak_;
    HostPeak host_peak_;                // zero until measured
    std::optional<HostGemm> host_path_; // where an omp backend runs on host cores
    Report rep_;
};

} // namespace

Report run_bench(const BenchOptions& o, std::ostream& log)
{
    const auto kernels = select_kernels(o.kernels);
    std::vector<Dims> dims; // every kernel's sizes checked before anything runs
    for (const Kernel* k : kernels) {
        try {
            dims.push_back(k->dims(o.problem));
        } catch (const Error& e) {
            throw Error(std::string(k->name) + ": " + e.what());
        }
    }
    Bench bench(o, log);
    bench.make_anchors(kernels);
    bench.measure_host_peak_for(kernels);
    for (std::size_t i = 0; i < kernels.size(); ++i) bench.run(*kernels[i], dims[i]);
    return bench.report();
}

void print_csv(const Report& r, std::ostream& out)
{
    std::string dev;
    for (const auto& [n, d] : r.device) dev += (dev.empty() ? "" : "; ") + n + " = " + d;
    out << "# device: " << dev << "\n# peak: " << r.peak << "\n";
    for (const auto& [n, text] : r.info) out << "# " << n << ": " << text << "\n";
    const bool compare = !r.baseline_name.empty();
    out << "kernel,backend,m,n,k,bytes,flops,min_ms,avg_ms,max_ms,gflops,gbs,max_rel_err,peak_pct"
        << (compare ? ",ratio,max_diff" : "") << "\n";
    for (const Row& x : r.rows) {
        const double s = x.min_ms * 1e-3;
        out << x.kernel << ',' << x.backend << ',' << x.dims.m << ',' << x.dims.n << ',' << x.dims.k << ','
            << fmt(x.bytes, 9) << ',' << fmt(x.flops, 9) << ',' << fmt(x.min_ms) << ',' << fmt(x.avg_ms) << ','
            << fmt(x.max_ms) << ',' << fmt(x.flops / s * 1e-9) << ',' << fmt(x.bytes / s * 1e-9) << ',' << fmt(x.err, 2)
            << ',' << fmt(x.peak_pct, 2);
        if (compare) out << ',' << fmt(x.ratio) << ',' << fmt(x.diff, 2);
        out << '\n';
    }
}

void print_table(const Report& r, std::ostream& out)
{
    for (const auto& [n, d] : r.device) out << format("device  %-17s %s\n", n.c_str(), d.c_str());
    out << "peak    " << r.peak << "\n";
    for (const auto& [n, text] : r.info) out << n << " " << text << "\n";
    out << format("timing  %d warm-up run(s) dropped, %d timed; GFLOP/s and GB/s from the minimum time\n", r.warmup,
                  r.reps);
    const bool compare = !r.baseline_name.empty();
    out << format("\n%-16s %-17s %-17s %10s %10s %10s %9s %9s %7s %9s %8s%s\n", "kernel", "backend", "shape", "min ms",
                  "avg ms", "max ms", "GFLOP/s", "GB/s", "% peak", "rel err",
                  compare ? ("x " + r.baseline_name).c_str() : "x anchor", compare ? "  max diff" : "");
    for (const Row& x : r.rows) {
        const double s = x.min_ms * 1e-3;
        const Dims& d = x.dims;
        const std::string shape = d.n == 1
            ? std::to_string(d.m)
            : std::to_string(d.m) + "x" + std::to_string(d.n) + (d.k > 1 ? "x" + std::to_string(d.k) : "");
        const std::string diff = compare ? "  " + (std::isnan(x.diff) ? std::string("-") : fmt(x.diff, 1)) : "";
        out << format("%-16s %-17s %-17s %10.4f %10.4f %10.4f %9.2f %9.2f %7s %9s %8s%s\n", x.kernel.c_str(),
                      x.backend.c_str(), shape.c_str(), x.min_ms, x.avg_ms, x.max_ms, x.flops / s * 1e-9,
                      x.bytes / s * 1e-9, std::isnan(x.peak_pct) ? "-" : fmt(x.peak_pct, 0).c_str(),
                      std::isnan(x.err) ? "-" : fmt(x.err, 1).c_str(),
                      std::isnan(x.ratio) || x.baseline ? "" : fmt(x.ratio, 1).c_str(), diff.c_str());
    }
}

std::vector<std::string> kernel_names()
{
    std::vector<std::string> names{"all"};
    for (const auto& k : all_kernels()) names.emplace_back(k.name);
    return names;
}

std::vector<std::string> split_list(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

double max_rel_err(const Result& got, const Result& ref)
{
    double worst = 0.0;
    for (std::size_t p = 0; p < ref.size(); ++p) {
        double num = 0.0, den = 0.0;
        for (std::size_t i = 0; i < ref[p].size(); ++i) {
            const double d = std::fabs(got[p][i] - ref[p][i]);
            num = std::isnan(d) ? INFINITY : std::max(num, d);
            den = std::max(den, std::fabs(ref[p][i]));
        }
        worst = std::max(worst, num == 0.0 ? 0.0 : num / (den > 0.0 ? den : 1.0));
    }
    return worst;
}

} // namespace ompml::bench
