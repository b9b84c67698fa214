// One point of the scaling study (scale.hpp).
#include "app/scale.hpp"

#include "app/cli.hpp"
#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/data_parallel.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/trace_file.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

namespace ompml {
namespace {

double median(std::vector<double> v)
{
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

double min_of(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }

// The slowest rank's value, in ms (a synchronous step goes at the pace of the slowest rank).
double max_ms_over_ranks(MPI_Comm comm, double seconds)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm));
    return 1e3 * seconds;
}

// Rows of the global batch this rank holds: weak mode gives every rank `batch`; strong mode
// splits `batch` as evenly as possible (the first batch % P ranks take one more).
int rank_rows(const ScaleOptions& o, int rank, int size)
{
    const int batch = o.cfg.batch;
    if (o.mode == ScaleMode::weak) return batch;
    return batch / size + (rank < batch % size ? 1 : 0);
}

// What one step needs: the backend, the step (model, optimizer, gradient sum) and this rank's batch.
struct ScaleSetup {
    std::unique_ptr<Backend> be;
    ParallelStep step;
    DeviceBuffer<float> X;        // (rows, IN) synthetic input, this rank's slice
    DeviceBuffer<std::int32_t> Y; // (rows) labels
    DeviceBatch batch;
};

ScaleSetup build(const MpiSession& mpi, const ScaleOptions& o)
{
    ScaleSetup s;
    const int rows = rank_rows(o, mpi.rank(), mpi.size());
    collective_try(mpi.comm(), [&] { s.be = make_backend(o.run.backend); });
    GradSumOptions so;
    so.bucket_mb = o.run.bucket_mb;
    so.force_staging = o.run.mpi_staging;
    so.gpu_memory = s.be->on_gpu();
    so.transport = o.run.grad_transport;
    so.mpi_fp32 = o.run.mpi_fp32_sum;
    const SumMode mode = o.grad_sync == GradSync::avg ? SumMode::buckets : SumMode::blocking_allreduce;
    collective_try(mpi.comm(), [&] {
        s.step = make_parallel_step(mpi.comm(), *s.be, o.cfg, std::max(1, rows), o.run.grad_dtype, so, mode);
        Model& model = s.step.step->model();
        model.init_params(o.cfg.seed);
        // Each rank draws its own rows (stream per rank), like a slice of a shuffled dataset.
        const int IN = model.inputs(), C = model.classes();
        const Rng xr(o.cfg.seed, 5000 + static_cast<std::uint64_t>(mpi.rank()));
        const Rng yr(o.cfg.seed, 6000 + static_cast<std::uint64_t>(mpi.rank()));
        std::vector<float> hx(static_cast<std::size_t>(std::max(1, rows)) * IN);
        std::vector<std::int32_t> hy(static_cast<std::size_t>(std::max(1, rows)));
        for (std::size_t i = 0; i < hx.size(); ++i) hx[i] = xr.normal(i);
        for (std::size_t i = 0; i < hy.size(); ++i)
            hy[i] = static_cast<std::int32_t>(yr.below(i, static_cast<std::uint32_t>(C)));
        s.X = DeviceBuffer<float>(s.be->memory(), hx);
        s.Y = DeviceBuffer<std::int32_t>(s.be->memory(), hy);
    });
    const int global_rows = o.mode == ScaleMode::weak ? o.cfg.batch * mpi.size() : o.cfg.batch;
    s.batch = DeviceBatch{rows, global_rows, s.X.data(), s.Y.data()};
    return s;
}

// Checks one step's summed gradient, by the path the timed steps take, against an independent
// sum: the ranks' local gradients summed by a blocking MPI_Allreduce on the host. Throws (on
// every rank) on a mismatch.
void validate(MPI_Comm comm, ScaleSetup& s)
{
    Step& step = *s.step.step;
    const std::size_t n = step.model().num_params();
    const XentStats st = step.gradient(s.batch, false);
    s.be->synchronize();
    std::vector<float> ref = step.download_gradient();         // (P) local gradient, then its sum over ranks
    const bool half = step.gradient_type() == Precision::bf16; // the ranks exchange bf16 (--grad-dtype bf16)
    std::vector<float> mag;                                    // (P) bf16: the sum over ranks of |local gradient|
    if (half) {
        mag.resize(n);
        for (std::size_t i = 0; i < n; ++i) mag[i] = std::fabs(ref[i]);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mag.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ref.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
    // The same local gradient once more, summed as the timed steps sum it.
    step.gradient(s.batch, true);
    const std::vector<float> got = step.download_gradient(); // (P) the sum
    int ranks = 1;
    MPI_CHECK(MPI_Comm_size(comm, &ranks));

    // Buckets may sum the P terms in another order than the one-shot reduction, so allow float
    // rounding of a P-term sum relative to the largest gradient entry.
    double gmax = 0.0;
    for (float r : ref) gmax = std::max(gmax, std::fabs(static_cast<double>(r)));
    const double tol = 1e-6 * ranks * gmax + 1e-30;
    // bf16: each term is rounded (relative 2^-8 at most), then the sum: |error| <= 2^-8 (sum|g_r|
    // + |sum|), plus the float rounding above.
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
        const double b16 = half ? 0x1p-8 * (mag[i] + std::fabs(static_cast<double>(ref[i]))) : 0.0;
        if (!(d <= tol + b16 + 1e-5 * std::fabs(static_cast<double>(ref[i]))) && bad++ == 0) first = i;
    }
    double loss = st.loss_sum;
    allreduce_sum(comm, &loss, 1);
    std::string err;
    if (!std::isfinite(loss)) err = "validation: the loss is not finite";
    if (bad > 0)
        err = "validation: " + std::to_string(bad) + " of " + std::to_string(n) + " summed gradient entries differ " +
            (half ? "by more than bf16 rounding " : "") + "from a plain MPI_Allreduce (first at " +
            std::to_string(first) + ": " + std::to_string(got[first]) + " vs " + std::to_string(ref[first]) + ")";
    collective_ok(comm, err.empty(), err);
}

// The timed steps, as training runs them; per step: wall time, communication, exposed wait.
struct StepTimes {
    std::vector<double> step_s, comm_s, wait_s;
    std::vector<double> node_s, inter_s, share_s; // the hierarchical sum's phases (0 for the others)
    std::vector<double> loss; // this rank's loss sum per timed step (summed over ranks after timing)
    int buckets = 0;
};
StepTimes time_steps(MPI_Comm comm, const ScaleOptions& o, ScaleSetup& s, TraceFile* trace_file)
{
    Step& step = *s.step.step;
    const float lr = o.cfg.opt.lr;
    int number = 0; // the step's number in a trace: warm-up steps first
    double loss = 0;
    const auto one_step = [&] {
        trace::set_step(++number);
        {
            const trace::Span span("step");
            loss = step.run(s.batch, lr).loss_sum;
            s.be->synchronize();
        }
        trace::end_step();
    };
    for (int i = 0; i < o.warmup; ++i) one_step();
    MPI_CHECK(MPI_Barrier(comm)); // start the timed steps together
    StepTimes t;
    for (int i = 0; i < o.steps; ++i) {
        const Stopwatch sw;
        one_step();
        t.step_s.push_back(sw.seconds());
        t.loss.push_back(loss);
        // --grad-sync allreduce: all of it exposed (nothing overlaps a blocking call)
        const GradSyncStats& g = step.sum_last();
        t.comm_s.push_back(g.mpi_s + g.copy_s);
        t.wait_s.push_back(g.wait_s);
        t.node_s.push_back(g.node_s);
        t.inter_s.push_back(g.inter_s);
        t.share_s.push_back(g.share_s);
        t.buckets = g.buckets;
    }
    if (trace_file != nullptr) trace_file->write();
    return t;
}

// --reproducible-ranks N: what the fixed order costs. The default mode (the same options with
// reproducible_ranks 0: its own model, transport and kernels) and the fixed-order setup take
// turns, step by step, the first of each pair alternating, so both meet the same load. The
// medians of each, max over ranks, go into p.
void time_mode_cost(const MpiSession& mpi, const ScaleOptions& o, ScaleSetup& fixed, ScalePoint& p)
{
    const MPI_Comm comm = mpi.comm();
    ScaleOptions d = o;
    d.cfg.reproducible_ranks = 0;
    ScaleSetup dflt = build(mpi, d);
    ScaleSetup* setups[2] = {&dflt, &fixed};
    std::vector<double> step_s[2], comm_s[2];
    for (int i = 0; i < o.warmup + o.steps; ++i)
        for (int turn = 0; turn < 2; ++turn) {
            const int which = (i + turn) % 2;
            ScaleSetup& s = *setups[which];
            MPI_CHECK(MPI_Barrier(comm));
            const Stopwatch sw;
            s.step.step->run(s.batch, o.cfg.opt.lr);
            s.be->synchronize();
            if (i < o.warmup) continue;
            step_s[which].push_back(sw.seconds());
            const GradSyncStats& g = s.step.step->sum_last();
            comm_s[which].push_back(g.mpi_s + g.copy_s);
        }
    p.default_step_ms = max_ms_over_ranks(comm, median(step_s[0]));
    p.default_comm_ms = max_ms_over_ranks(comm, median(comm_s[0]));
    p.fixed_step_ms = max_ms_over_ranks(comm, median(step_s[1]));
    p.fixed_comm_ms = max_ms_over_ranks(comm, median(comm_s[1]));
}

// The same bytes through one blocking MPI_Allreduce, in place on a host buffer. Zeros keep the
// repeated in-place sums finite. A barrier before each call, so the time is the reduction's,
// not a late rank's arrival.
std::vector<double> time_plain_allreduce(MPI_Comm comm, const ScaleOptions& o, std::size_t n)
{
    std::vector<float> plain(n, 0.0f); // (P)
    std::vector<double> s;
    for (int i = 0; i < o.warmup + o.steps; ++i) {
        MPI_CHECK(MPI_Barrier(comm));
        const Stopwatch t;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, plain.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
        if (i >= o.warmup) s.push_back(t.seconds());
    }
    return s;
}

std::string layers_csv(const std::vector<int>& layers) // "784-2048-2048-10": no commas in a CSV field
{
    std::string s = layers_string(layers);
    std::replace(s.begin(), s.end(), ',', '-');
    return s;
}

} // namespace

std::optional<int> parse_scale_flags(int argc, char** argv, bool print, ScaleOptions& out)
{
    CLI::App app{"ompml-scale: time one data-parallel training step (compute vs communication) on P ranks"};
    cli::SettingFlags flags;
    flags.add(app, out, [](auto&& f) { for_each_scale_setting(f); });
    app.get_option("--batch")->description("rows per rank (weak) or per global batch (strong)");
    app.get_option("--backend")->description(cli::backend_help(available_backends()));
    if (const auto rc = cli::parse(app, argc, argv, "ompml-scale", print)) return rc;
    cli::note_renamed(argc, argv, "--warmup", "--warmup-steps", "ompml-scale", print);
    flags.apply();
    return std::nullopt;
}

ScalePoint run_scale(const MpiSession& mpi, const ScaleOptions& o)
{
    const MPI_Comm comm = mpi.comm();
    Config agreed;
    for_each_scale_setting([&](const Spec& s, auto field) {
        if (s.agree) agreed.emplace_back(s.key, value_text(field(o), true));
    });
    agree(comm, agreed);
    if (o.cfg.reproducible_ranks > 0 && o.grad_sync != GradSync::avg)
        throw CollectiveError("--reproducible-ranks needs --grad-sync avg (one blocking MPI_Allreduce sums in MPI's "
                              "order, not the fixed tree)",
                              -1, 0);
    if (o.run.grad_dtype == Precision::bf16 && o.grad_sync != GradSync::avg)
        throw CollectiveError("--grad-dtype bf16 needs --grad-sync avg (the transport sends bf16; the plain "
                              "MPI_Allreduce is fp32)",
                              -1, 0);
    // Before the backend is made: local rank -> device, by one rule for every backend.
    DeviceBinding dev;
    collective_try(comm, [&] { dev = mpi.bind_device(o.run.backend); });
    ScalePoint p;
    p.where = gather_strings(comm, mpi.processor() + ", " + dev.describe());
    ScaleSetup s = build(mpi, o);
    validate(comm, s);
    std::unique_ptr<TraceFile> trace_file;
    const std::size_t params = s.step.step->model().num_params();
    if (!o.run.trace.empty()) {
        trace_file = std::make_unique<TraceFile>(
            mpi, o.run.trace,
            TraceInfo{"ompml-scale", o.warmup + 1, std::int64_t{o.warmup} + o.steps, params,
                      provenance("ompml-scale", mpi.processor(), std::string(s.be->name()) + " on " + s.be->device())});
        p.trace = o.run.trace;
    }
    const StepTimes t = time_steps(comm, o, s, trace_file.get());
    const std::vector<double> ar_s = time_plain_allreduce(comm, o, params);
    if (o.cfg.reproducible_ranks > 0) time_mode_cost(mpi, o, s, p);

    p.params = params;
    p.ranks = mpi.size();
    p.threads = omp_get_max_threads();
    p.global_rows = s.batch.global_rows;
    p.rank_rows = s.batch.rows;
    p.step_ms = max_ms_over_ranks(comm, median(t.step_s));
    p.step_min_ms = max_ms_over_ranks(comm, min_of(t.step_s));
    p.comm_ms = max_ms_over_ranks(comm, median(t.comm_s));
    p.wait_ms = max_ms_over_ranks(comm, median(t.wait_s));
    p.node_ms = max_ms_over_ranks(comm, median(t.node_s));
    p.inter_ms = max_ms_over_ranks(comm, median(t.inter_s));
    p.share_ms = max_ms_over_ranks(comm, median(t.share_s));
    p.allreduce_ms = max_ms_over_ranks(comm, median(ar_s));
    p.allreduce_min_ms = max_ms_over_ranks(comm, min_of(ar_s));
    p.compute_ms = std::max(0.0, p.step_ms - p.comm_ms);
    double losses[2] = {t.loss.front(), t.loss.back()}; // --steps >= 1
    allreduce_sum(comm, losses, 2);
    p.loss_first = losses[0] / p.global_rows;
    p.loss_last = losses[1] / p.global_rows;
    p.samples_per_s = p.step_ms > 0 ? p.global_rows / (p.step_ms * 1e-3) : 0.0;
    p.buckets = t.buckets;
    p.transport = s.step.step->sum_kind();
    p.transport_text = s.step.step->sum_describe();
    p.backend = s.be->name();
    p.device = s.be->device();
    return p;
}

const char* const kScaleCsvHeader =
    "mode,layers,params,ranks,threads,global_batch,rank_batch,steps,step_ms,step_min_ms,compute_ms,comm_ms,wait_ms,"
    "allreduce_ms,allreduce_min_ms,samples_per_s,buckets,bucket_mb,grad_sync,transport,grad_dtype,loss_first,"
    "loss_last,precision,mpi_fp32_sum,reproducible_ranks,node_ms,inter_ms,share_ms,fixed_step_ms,fixed_comm_ms,"
    "default_step_ms,default_comm_ms";

void print_scale_csv(const ScaleOptions& o, const ScalePoint& p)
{
    if (o.header) std::printf("%s\n", kScaleCsvHeader);
    std::printf(
        "%s,%s,%zu,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.1f,%d,%g,%s,%s,%s,%.6g,%.6g,%s,%s,%d,%.4f,"
        "%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n",
        enum_name(o.mode), layers_csv(o.cfg.model.layers).c_str(), p.params, p.ranks, p.threads, p.global_rows,
        p.rank_rows, o.steps, p.step_ms, p.step_min_ms, p.compute_ms, p.comm_ms, p.wait_ms, p.allreduce_ms,
        p.allreduce_min_ms, p.samples_per_s, p.buckets, o.run.bucket_mb, enum_name(o.grad_sync), p.transport.c_str(),
        enum_name(o.run.grad_dtype), p.loss_first, p.loss_last, enum_name(o.cfg.model.precision),
        enum_name(o.run.mpi_fp32_sum), o.cfg.reproducible_ranks, p.node_ms, p.inter_ms, p.share_ms, p.fixed_step_ms,
        p.fixed_comm_ms, p.default_step_ms, p.default_comm_ms);
    std::fflush(stdout);
    std::fprintf(stderr, "ompml-scale: %s; gradient sum: %s; validated against MPI_Allreduce\n", p.device.c_str(),
                 p.transport_text.c_str());
    for (std::size_t q = 0; q < p.where.size(); ++q)
        std::fprintf(stderr, "ompml-scale: rank %zu: %s\n", q, p.where[q].c_str());
    if (!p.trace.empty()) std::fprintf(stderr, "ompml-scale: trace: %s\n", p.trace.c_str());
}

void print_scale_report(const ScaleOptions& o, const ScalePoint& p)
{
    const double mb = p.params * 4.0 / 1048576.0;
    std::printf("ompml-scale: %s scaling, layers %s (%zu params, %.1f MB of gradient), precision %s\n",
                enum_name(o.mode), layers_string(o.cfg.model.layers).c_str(), p.params, mb,
                enum_name(o.cfg.model.precision));
    std::printf("  %d rank(s) x %d thread(s), global batch %d (%d rows on rank 0), backend %s on %s\n", p.ranks,
                p.threads, p.global_rows, p.rank_rows, p.backend.c_str(), p.device.c_str());
    for (std::size_t q = 0; q < p.where.size(); ++q) std::printf("  rank %-4zu %s\n", q, p.where[q].c_str());
    if (o.grad_sync == GradSync::allreduce)
        std::printf("  gradient sum: %s; validated against MPI_Allreduce\n", p.transport_text.c_str());
    else
        std::printf("  gradient sum: %s, %d %s; validated against MPI_Allreduce\n", p.transport_text.c_str(), p.buckets,
                    p.transport == "shm" ? "range(s)"
                                         : ("bucket(s) of <= " + value_text(o.run.bucket_mb) + " MB").c_str());
    std::printf("  per step (median of %d after %d warm-up, max over ranks):\n", o.steps, o.warmup);
    std::printf("    step %.3f ms (min %.3f) = compute %.3f + communication %.3f (of which waiting %.3f)\n", p.step_ms,
                p.step_min_ms, p.compute_ms, p.comm_ms, p.wait_ms);
    if (p.transport == "hier")
        std::printf("    hierarchical phases: node sum %.3f + inter-node %.3f (node leaders) + share %.3f ms\n",
                    p.node_ms, p.inter_ms, p.share_ms);
    std::printf("    plain MPI_Allreduce of the same %.1f MB: %.3f ms (min %.3f)\n", mb, p.allreduce_ms,
                p.allreduce_min_ms);
    std::printf("  %.1f samples/s; loss %.6g at the first timed step, %.6g at the last\n", p.samples_per_s,
                p.loss_first, p.loss_last);
    if (o.cfg.reproducible_ranks > 0)
        std::printf("  the fixed order's cost (--reproducible-ranks %d against the default mode, alternating steps, "
                    "median of %d each):\n"
                    "    step %.3f ms (communication %.3f) against %.3f ms (communication %.3f): %.3fx\n",
                    o.cfg.reproducible_ranks, o.steps, p.fixed_step_ms, p.fixed_comm_ms, p.default_step_ms,
                    p.default_comm_ms, p.default_step_ms > 0 ? p.fixed_step_ms / p.default_step_ms : 0.0);
    if (!p.trace.empty()) std::printf("trace: %s (tools/trace_report.py %s)\n", p.trace.c_str(), p.trace.c_str());
}

} // namespace ompml
