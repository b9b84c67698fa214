// ompml-scale: one point of the scaling study. Times the data-parallel training step of an MLP
// (forward, loss + backward with the gradient sum started per layer, finish, optimizer step) on
// P MPI ranks, split into compute and communication, and in the same run times a plain blocking
// MPI_Allreduce of the same number of bytes, so the averager's cost can be read against what MPI
// itself needs for that buffer. tools/scaling.sh runs it over ranks, threads and widths.
//
//   mpirun -np 2 --bind-to none ompml-scale --mode weak --layers 784,2048,2048,10 --batch 128 --csv --header
//
// Input is synthetic and device-resident: one random batch per rank, made once from the seed
// with ompml::Rng and uploaded once, so no I/O or host->device traffic is in the timed loop.
//   weak  : --batch rows per rank (global batch = P * batch): ideal time per step is constant.
//   strong: --batch rows in total, split over the ranks: ideal time per step falls as 1/P.
//
// Times per step (median over --steps timed steps after --warmup, then the MAX over ranks: the
// slowest rank sets the pace of a synchronous step):
//   step_ms      wall time of the whole step, ending after Backend::synchronize()
//   comm_ms      time the step's thread spent in the gradient sum: inside MPI (bucket starts,
//                progress tests, the final wait) plus staging copies, or in the shared-memory
//                sums and waits (--grad-transport shm): GradientAverager stats. Open MPI has
//                no progress thread, so all of it is on the critical path.
//   wait_ms      the part of comm_ms spent waiting in finish() after backward was done
//                (--grad-sync allreduce: one blocking MPI_Allreduce after backward instead of
//                the averager; then comm_ms = wait_ms = the time of that call)
//   compute_ms   step_ms - comm_ms
//   allreduce_ms a plain MPI_Allreduce(MPI_IN_PLACE) of params floats in a host buffer, after a
//                barrier, same repetitions: what the same bytes cost without overlap or buckets.
// Before timing, one step's averaged gradient is checked against a host MPI_Allreduce of the
// ranks' local gradients (validate, then time). Only rank 0 prints.
#include "backend/backend.hpp"
#include "app/cli.hpp"
#include "core/buffer.hpp"
#include "core/check.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "parallel/comm.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/mpi_check.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"

#include <CLI/CLI.hpp>
#include <mpi.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace ompml;

struct Args {
    std::string mode = "weak";
    std::string layers = "784,2048,2048,10";
    std::string activation = "relu";
    std::string optimizer = "adam";
    std::string backend = "omp";
    std::string grad_sync = "avg";
    std::string transport = "auto";
    int batch = 128;
    int steps = 20;
    int warmup = 3;
    double lr = 1e-4;
    double bucket_mb = GradSyncOptions{}.bucket_mb;
    std::uint64_t seed = 1;
    bool csv = false;
    bool header = false;
};

const char* kCsvHeader = "mode,layers,params,ranks,threads,global_batch,rank_batch,steps,step_ms,step_min_ms,"
                         "compute_ms,comm_ms,wait_ms,allreduce_ms,allreduce_min_ms,samples_per_s,buckets,bucket_mb,grad_sync,transport";

double median(std::vector<double> v)
{
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

double min_of(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }

// The slowest rank's value (a synchronous step goes at the pace of the slowest rank).
double max_over_ranks(MPI_Comm comm, double v)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, comm));
    return v;
}

// Rows of the global batch this rank holds: weak mode gives every rank `batch`; strong mode
// splits `batch` as evenly as possible (the first batch % P ranks take one more).
std::string fmt_mb(double mb)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g MB", mb);
    return buf;
}

int rank_rows(const Args& a, int rank, int size)
{
    if (a.mode == "weak") return a.batch;
    return a.batch / size + (rank < a.batch % size ? 1 : 0);
}

// Checks one step's averaged gradient against an independent sum: the ranks' local gradients
// summed by a blocking MPI_Allreduce on the host. Throws (on every rank) on a mismatch.
void validate(MPI_Comm comm, Backend& be, Mlp& model, GradientAverager& avg, const float* X, const std::int32_t* Y,
              int rows, float scale)
{
    const std::size_t n = model.num_params();
    if (rows > 0) model.forward(X, rows, true);
    const XentStats st = model.loss_backward(X, Y, rows, scale);
    be.synchronize();
    std::vector<float> ref(n); // (P) local gradient, then its sum over ranks
    be.memory().to_host(ref.data(), model.grads(), n * sizeof(float));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ref.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
    avg.allreduce();
    std::vector<float> got(n);
    be.memory().to_host(got.data(), model.grads(), n * sizeof(float));

    // The averager's buckets may sum the P terms in another order than the one-shot reduction,
    // so allow float rounding of a P-term sum relative to the largest gradient entry.
    double gmax = 0.0;
    for (float r : ref) gmax = std::max(gmax, std::fabs(static_cast<double>(r)));
    const double tol = 1e-6 * avg.ranks() * gmax + 1e-30;
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
        if (!(d <= tol + 1e-5 * std::fabs(static_cast<double>(ref[i])))) {
            if (bad++ == 0) first = i;
        }
    }
    double loss = st.loss_sum;
    allreduce_sum(comm, &loss, 1);
    std::string err;
    if (!std::isfinite(loss)) err = "validation: the loss is not finite";
    if (bad > 0)
        err = "validation: " + std::to_string(bad) + " of " + std::to_string(n) +
              " averaged gradient entries differ from a plain MPI_Allreduce (first at " + std::to_string(first) +
              ": " + std::to_string(got[first]) + " vs " + std::to_string(ref[first]) + ")";
    collective_ok(comm, err.empty(), err);
}

int run(MpiSession& mpi, int argc, char** argv)
{
    MPI_Comm comm = mpi.comm();
    const int P = mpi.size();

    Args a;
    CLI::App app{"ompml-scale: time one data-parallel training step (compute vs communication) on P ranks"};
    app.add_option("--mode", a.mode, "weak: --batch rows per rank | strong: --batch rows in total")
        ->check(CLI::IsMember({"weak", "strong"}));
    app.add_option("--layers", a.layers, "widths, input,hidden...,classes");
    app.add_option("--activation", a.activation, "relu | tanh | gelu");
    app.add_option("--optimizer", a.optimizer, "sgd | adam | adamw");
    app.add_option("--backend", a.backend, "omp | ref | cuda");
    cli::add_int(app, "--batch", a.batch, "rows per rank (weak) or per global batch (strong)", 1);
    cli::add_int(app, "--steps", a.steps, "timed steps", 1);
    cli::add_int(app, "--warmup", a.warmup, "untimed steps first", 0);
    app.add_option("--lr", a.lr, "learning rate (values do not matter for timing; keep them finite)")
        ->check(cli::kFinite);
    app.add_option("--grad-sync", a.grad_sync,
                   "avg: GradientAverager, buckets started during backward (as training does) | "
                   "allreduce: one blocking MPI_Allreduce after backward (the alternative to compare)")
        ->check(CLI::IsMember({"avg", "allreduce"}));
    app.add_option("--bucket-mb", a.bucket_mb, "gradient bucket size in MB (<= 0: one bucket in finish)")
        ->check(cli::kFinite);
    app.add_option("--grad-transport", a.transport,
                   "the averager's transport: shm (shared memory, one node) | mpi (MPI_Iallreduce buckets) | "
                   "auto (shm where possible)")
        ->check(CLI::IsMember({"auto", "mpi", "shm"}));
    cli::add_int(app, "--seed", a.seed, "seed of the parameters and the synthetic batch");
    app.add_flag("--csv", a.csv, "print one CSV row instead of the readable report");
    app.add_flag("--header", a.header, "with --csv: print the CSV header first");
    // Every rank parses the same command line, so every rank leaves here alike.
    if (const auto rc = cli::parse(app, argc, argv, "ompml-scale", mpi.root())) return *rc;
    const bool root = mpi.root();
    agree(comm, {{"mode", a.mode}, {"layers", a.layers}, {"activation", a.activation}, {"optimizer", a.optimizer},
                 {"backend", a.backend}, {"batch", std::to_string(a.batch)}, {"steps", std::to_string(a.steps)},
                 {"warmup", std::to_string(a.warmup)}, {"bucket_mb", std::to_string(a.bucket_mb)}, {"grad_sync", a.grad_sync},
                 {"transport", a.transport}, {"seed", std::to_string(a.seed)}});

    // Before the backend is made: local rank -> device, by one rule for every backend.
    DeviceBinding dev;
    collective_try(comm, [&] { dev = mpi.bind_device(a.backend); });
    const std::vector<std::string> where = gather_strings(comm, mpi.processor() + ", " + dev.describe());
    const int rows = rank_rows(a, mpi.rank(), P);
    const int global_rows = a.mode == "weak" ? a.batch * P : a.batch;
    const float scale = 1.0f / static_cast<float>(global_rows);

    std::unique_ptr<Backend> be;
    std::unique_ptr<Mlp> model;
    std::unique_ptr<Optimizer> opt;
    DeviceBuffer<float> X;        // (rows, IN) synthetic input, this rank's slice
    DeviceBuffer<std::int32_t> Y; // (rows) labels
    collective_try(comm, [&] {
        be = make_backend(a.backend);
        MlpConfig cfg;
        cfg.layers = parse_layers(a.layers);
        cfg.activation = parse_enum<Act>(a.activation);
        model = std::make_unique<Mlp>(*be, cfg, std::max(1, rows));
        model->init_params(a.seed);
        OptimizerConfig oc;
        oc.kind = parse_enum<OptKind>(a.optimizer);
        oc.lr = static_cast<float>(a.lr);
        opt = std::make_unique<Optimizer>(*be, oc, model->num_params());
        // Each rank draws its own rows (stream per rank), like a slice of a shuffled dataset.
        const int IN = model->inputs(), C = model->classes();
        const Rng xr(a.seed, 5000 + static_cast<std::uint64_t>(mpi.rank()));
        const Rng yr(a.seed, 6000 + static_cast<std::uint64_t>(mpi.rank()));
        std::vector<float> hx(static_cast<std::size_t>(std::max(1, rows)) * IN);
        std::vector<std::int32_t> hy(static_cast<std::size_t>(std::max(1, rows)));
        for (std::size_t i = 0; i < hx.size(); ++i) hx[i] = xr.normal(i);
        for (std::size_t i = 0; i < hy.size(); ++i) hy[i] = static_cast<std::int32_t>(yr.below(i, static_cast<std::uint32_t>(C)));
        X = DeviceBuffer<float>(be->memory(), hx);
        Y = DeviceBuffer<std::int32_t>(be->memory(), hy);
    });

    GradSyncOptions so;
    so.bucket_mb = a.bucket_mb;
    so.gpu_memory = be->on_gpu();
    so.transport = parse_enum<GradTransport>(a.transport);
    std::unique_ptr<GradientAverager> avg_p; // owns the gradient buffer backward writes
    collective_try(comm, [&] { avg_p = std::make_unique<GradientAverager>(comm, be->memory(), model->num_params(), so); });
    GradientAverager& avg = *avg_p;
    model->use_grad_buffer(avg.data());
    const std::size_t n = model->num_params();

    validate(comm, *be, *model, avg, X.data(), Y.data(), rows, scale);

    // The step as training runs it (ompml::Trainer::train_step): buckets start from the
    // backward callback as each layer's gradient becomes final, last layer first.
    const float lr = static_cast<float>(a.lr);
    const bool blocking = a.grad_sync == "allreduce";
    std::vector<float> stage(blocking && &be->memory() != &host_memory() ? n : 0); // (P) host copy
    double blocking_s = 0.0; // --grad-sync allreduce: this step's time in the sum
    auto step = [&] {
        if (rows > 0) model->forward(X.data(), rows, true);
        if (blocking) {
            // The alternative: no overlap, one blocking reduction of the whole gradient (staged
            // through the host when the backend's memory is not host memory).
            model->loss_backward(X.data(), Y.data(), rows, scale);
            be->synchronize();
            const Stopwatch t;
            float* buf = model->grads();
            if (!stage.empty()) {
                be->memory().to_host(stage.data(), buf, n * sizeof(float));
                buf = stage.data();
            }
            if (P > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
            if (!stage.empty()) be->memory().to_device(model->grads(), stage.data(), n * sizeof(float));
            blocking_s = t.seconds();
        } else {
            // As training runs it (ompml::Trainer::train_step): buckets start from the backward
            // callback as each layer's gradient becomes final, last layer first.
            model->loss_backward(X.data(), Y.data(), rows, scale, [&](int, const LayerView& v) {
                be->synchronize(); // bucket_ready needs the layer's gradient final on the device
                avg.bucket_ready(v.w, v.count());
            });
            avg.finish();
        }
        opt->step(model->params(), model->grads(), lr);
        be->synchronize();
    };

    for (int i = 0; i < a.warmup; ++i) step();
    MPI_CHECK(MPI_Barrier(comm)); // start the timed steps together
    std::vector<double> step_s, comm_s, wait_s;
    int buckets = 0;
    for (int i = 0; i < a.steps; ++i) {
        const Stopwatch t;
        step();
        step_s.push_back(t.seconds());
        if (blocking) {
            comm_s.push_back(blocking_s); // all of it exposed: nothing overlaps a blocking call
            wait_s.push_back(blocking_s);
            buckets = P > 1 ? 1 : 0;
            continue;
        }
        const GradSyncStats& s = avg.last_step();
        comm_s.push_back(s.mpi_s + s.copy_s);
        wait_s.push_back(s.wait_s);
        buckets = s.buckets;
    }

    // The same bytes through one blocking MPI_Allreduce, in place on a host buffer. Zeros keep
    // the repeated in-place sums finite. A barrier before each call, so the time is the
    // reduction's, not a late rank's arrival.
    std::vector<float> plain(n, 0.0f); // (P)
    std::vector<double> ar_s;
    for (int i = 0; i < a.warmup + a.steps; ++i) {
        MPI_CHECK(MPI_Barrier(comm));
        const Stopwatch t;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, plain.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm));
        if (i >= a.warmup) ar_s.push_back(t.seconds());
    }

    const double step_ms = 1e3 * max_over_ranks(comm, median(step_s));
    const double step_min_ms = 1e3 * max_over_ranks(comm, min_of(step_s));
    const double comm_ms = 1e3 * max_over_ranks(comm, median(comm_s));
    const double wait_ms = 1e3 * max_over_ranks(comm, median(wait_s));
    const double ar_ms = 1e3 * max_over_ranks(comm, median(ar_s));
    const double ar_min_ms = 1e3 * max_over_ranks(comm, min_of(ar_s));
    const double compute_ms = std::max(0.0, step_ms - comm_ms);
    const double samples_per_s = step_ms > 0 ? global_rows / (step_ms * 1e-3) : 0.0;
    const int threads = omp_get_max_threads();
    std::string layers = layers_string(model->config().layers);
    std::string layers_csv = layers; // "784-2048-2048-10": no commas inside a CSV field
    std::replace(layers_csv.begin(), layers_csv.end(), ',', '-');

    if (!root) return 0;
    if (a.csv) {
        if (a.header) std::printf("%s\n", kCsvHeader);
        std::printf("%s,%s,%zu,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.1f,%d,%g,%s,%s\n", a.mode.c_str(),
                    layers_csv.c_str(), n, P, threads, global_rows, rows, a.steps, step_ms, step_min_ms, compute_ms, comm_ms,
                    wait_ms, ar_ms, ar_min_ms, samples_per_s, buckets, a.bucket_mb, a.grad_sync.c_str(),
                    P == 1 ? "none" : avg.shared_memory() ? "shm" : "mpi");
        std::fprintf(stderr, "ompml-scale: %s; gradient sum: %s; validated against MPI_Allreduce\n",
                     be->device().c_str(), avg.transport().c_str());
        for (std::size_t q = 0; q < where.size(); ++q)
            std::fprintf(stderr, "ompml-scale: rank %zu: %s\n", q, where[q].c_str());
    } else {
        std::printf("ompml-scale: %s scaling, layers %s (%zu params, %.1f MB of gradient)\n", a.mode.c_str(),
                    layers.c_str(), n, n * 4.0 / 1048576.0);
        std::printf("  %d rank(s) x %d thread(s), global batch %d (%d rows on rank 0), backend %s on %s\n", P, threads,
                    global_rows, rows, be->name(), be->device().c_str());
        for (std::size_t q = 0; q < where.size(); ++q) std::printf("  rank %-4zu %s\n", q, where[q].c_str());
        if (blocking)
            std::printf("  gradient sum: one blocking MPI_Allreduce after backward (--grad-sync allreduce)\n");
        else
            std::printf("  gradient sum: %s, %d %s; validated against MPI_Allreduce\n", avg.transport().c_str(),
                        buckets, avg.shared_memory() ? "range(s)" : ("bucket(s) of <= " + fmt_mb(a.bucket_mb)).c_str());
        std::printf("  per step (median of %d after %d warm-up, max over ranks):\n", a.steps, a.warmup);
        std::printf("    step %.3f ms (min %.3f) = compute %.3f + communication %.3f (of which waiting %.3f)\n",
                    step_ms, step_min_ms, compute_ms, comm_ms, wait_ms);
        std::printf("    plain MPI_Allreduce of the same %.1f MB: %.3f ms (min %.3f)\n", n * 4.0 / 1048576.0, ar_ms,
                    ar_min_ms);
        std::printf("  %.1f samples/s\n", samples_per_s);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    ompml::MpiSession mpi(&argc, &argv); // outside: see run_on_every_rank
    return ompml::run_on_every_rank(mpi, "ompml-scale", [&] { return run(mpi, argc, argv); });
}
