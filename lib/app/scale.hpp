// ompml-scale as library functions: one point of the scaling study. Times the data-parallel
// training step of an MLP (Trainer::train_step: forward, loss + backward with the gradient sum
// started per layer, finish, optimizer step) on P MPI ranks, split into compute and
// communication, and in the same run times a plain blocking MPI_Allreduce of the same number of
// bytes, so the averager's cost can be read against what MPI itself needs for that buffer.
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
//   (--trace FILE: the timed steps as a timeline, steps numbered after the warm-up's; the
//   recording waits for no device work here, so with a queued backend spans are launch times)
//   allreduce_ms a plain MPI_Allreduce(MPI_IN_PLACE) of params floats in a host buffer, after a
//                barrier, same repetitions: what the same bytes cost without overlap or buckets.
// Before timing, one step's summed gradient is checked against a host MPI_Allreduce of the
// ranks' local gradients (validate, then time); with --grad-dtype bf16 to within the bf16
// rounding of each term and of the sum. Only rank 0 prints.
// The loss: the global batch's mean loss of the first and the last timed step (the same
// synthetic batch every step, so it falls as the model fits it), to compare runs (--grad-dtype).
#pragma once

#include "core/precision.hpp"
#include "core/setting.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/settings.hpp"
#include "parallel/comm.hpp"
#include "parallel/grad_sync.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ompml {

enum class ScaleMode { weak, strong };
template <>
struct EnumNames<ScaleMode> {
    static constexpr const char* what = "mode";
    static constexpr std::pair<ScaleMode, const char*> names[] = {{ScaleMode::weak, "weak"},
                                                                  {ScaleMode::strong, "strong"}};
};
// How the step sums the gradient: the averager's buckets started during backward (as training
// does), or one blocking MPI_Allreduce after backward (the alternative to compare).
enum class GradSync { avg, allreduce };
template <>
struct EnumNames<GradSync> {
    static constexpr const char* what = "gradient sum";
    static constexpr std::pair<GradSync, const char*> names[] = {{GradSync::avg, "avg"},
                                                                 {GradSync::allreduce, "allreduce"}};
};

struct ScaleOptions {
    ScaleMode mode = ScaleMode::weak;
    std::vector<int> layers{784, 2048, 2048, 10};
    Act activation = Act::relu;
    Precision precision = Precision::fp32;
    OptKind optimizer = OptKind::adam;
    std::string backend = "omp";
    GradSync grad_sync = GradSync::avg;
    GradTransport transport = GradTransport::automatic;
    Precision grad_dtype = Precision::fp32;
    int batch = 128;
    int steps = 20;
    int warmup = 3;
    double lr = 1e-4;
    double bucket_mb = GradSyncOptions{}.bucket_mb;
    std::uint64_t seed = 1;
    bool csv = false;
    bool header = false;
    std::string trace; // "": none
};

template <class F>
void for_each_scale_option(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--mode",
           .key = "mode",
           .help = "weak: --batch rows per rank | strong: --batch rows in total",
           .store = run_only},
      OMPML_FIELD(mode));
    f(Spec{.flag = "--layers", .key = "layers", .help = "widths, input,hidden...,classes", .store = run_only},
      OMPML_FIELD(layers));
    f(Spec{.flag = "--activation", .key = "activation", .help = "relu | tanh | gelu", .store = run_only},
      OMPML_FIELD(activation));
    f(Spec{.flag = "--optimizer", .key = "optimizer", .help = "sgd | adam | adamw", .store = run_only},
      OMPML_FIELD(optimizer));
    f(Spec{.flag = "--precision",
           .key = "precision",
           .help = "fp32 | bf16 (bf16 gemm operands, fp32 accumulation and master weights)",
           .store = run_only},
      OMPML_FIELD(precision));
    f(Spec{.flag = "--backend", .key = "backend", .help = "omp | ref | cuda", .store = run_only}, OMPML_FIELD(backend));
    f(Spec{.flag = "--batch",
           .key = "batch",
           .help = "rows per rank (weak) or per global batch (strong)",
           .range = kPositive,
           .store = run_only},
      OMPML_FIELD(batch));
    f(Spec{.flag = "--steps", .key = "steps", .help = "timed steps", .range = kPositive, .store = run_only},
      OMPML_FIELD(steps));
    f(Spec{.flag = "--warmup",
           .key = "warmup",
           .help = "untimed steps first",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(warmup));
    f(Spec{.flag = "--lr",
           .key = "lr",
           .help = "learning rate (values do not matter for timing; keep them finite)",
           .store = run_only},
      OMPML_FIELD(lr));
    f(Spec{.flag = "--grad-sync",
           .key = "grad_sync",
           .help = "avg: GradientAverager, buckets started during backward (as training does) | allreduce: one "
                   "blocking MPI_Allreduce after backward (the alternative to compare)",
           .store = run_only},
      OMPML_FIELD(grad_sync));
    // The bucket layout decides the sequence of reductions: it must match everywhere.
    f(Spec{.flag = "--bucket-mb",
           .key = "bucket_mb",
           .help = "gradient bucket size in MB (<= 0: one bucket in finish)",
           .store = run_only},
      OMPML_FIELD(bucket_mb));
    f(Spec{.flag = "--grad-transport",
           .key = "transport",
           .help = "the averager's transport: shm (shared memory, one node) | mpi (MPI_Iallreduce buckets) | auto (shm "
                   "where possible)",
           .store = run_only},
      OMPML_FIELD(transport));
    f(Spec{.flag = "--grad-dtype",
           .key = "grad_dtype",
           .help = "what the ranks exchange in the averager's sum: fp32 | bf16 (half the bytes, fp32 sums; "
                   "with --grad-sync avg)",
           .store = run_only},
      OMPML_FIELD(grad_dtype));
    f(Spec{.flag = "--seed",
           .key = "seed",
           .help = "seed of the parameters and the synthetic batch",
           .store = run_only},
      OMPML_FIELD(seed));
    f(Spec{.flag = "--trace",
           .key = "trace",
           .help = "write a timeline of the timed steps of every rank (Chrome trace-event JSON; "
                   "tools/trace_report.py) to this file",
           .store = run_only},
      OMPML_FIELD(trace));
    f(Spec{.flag = "--csv",
           .key = "csv",
           .help = "print one CSV row instead of the readable report",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(csv));
    f(Spec{.flag = "--header",
           .key = "header",
           .help = "with --csv: print the CSV header first",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(header));
}

// Parses ompml-scale's command line (every rank the same one): the exit status when there is
// nothing to time (0 after --help, 2 after a usage error, printed where print is true).
std::optional<int> parse_scale_flags(int argc, char** argv, bool print, ScaleOptions& out);

// One point of the study: the medians over the timed steps, the max over ranks.
struct ScalePoint {
    std::size_t params = 0;
    int ranks = 1, threads = 1, global_rows = 0, rank_rows = 0; // rank 0's rows
    double step_ms = 0, step_min_ms = 0, compute_ms = 0, comm_ms = 0, wait_ms = 0;
    double allreduce_ms = 0, allreduce_min_ms = 0, samples_per_s = 0;
    double loss_first = 0, loss_last = 0; // mean loss over the global batch, first and last timed step
    int buckets = 0;
    std::string transport; // "none" (1 rank), "shm" or "mpi", and its description
    std::string transport_text;
    std::string backend, device;
    std::vector<std::string> where; // each rank's host and device
    std::string trace;              // the trace file written ("": none)
};

// Collective: agree on the options, bind, build, validate the gradient sum, time.
ScalePoint run_scale(const MpiSession& mpi, const ScaleOptions& opt);

extern const char* const kScaleCsvHeader;
void print_scale_csv(const ScaleOptions& opt, const ScalePoint& p);
void print_scale_report(const ScaleOptions& opt, const ScalePoint& p);

} // namespace ompml
