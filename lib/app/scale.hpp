// ompml-scale as library functions: one point of the scaling study. Times the data-parallel
// training step of an MLP (the Step ompml-train runs, wired by the same function,
// parallel/data_parallel.hpp: forward, loss + backward with the gradient sum started per layer,
// finish, optimizer step) on P MPI ranks, split into compute and communication, and in the same
// run times a plain blocking MPI_Allreduce of the same number of bytes, so the transport's cost
// can be read against what MPI itself needs for that buffer.
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
//                sums and waits (--grad-transport shm): the transport's stats. Open MPI has
//                no progress thread, so all of it is on the critical path.
//   wait_ms      the part of comm_ms spent waiting in finish() after backward was done
//                (--grad-sync allreduce: one blocking MPI_Allreduce after backward instead of
//                the buckets; then comm_ms = wait_ms = the time of that call)
//   node_ms, inter_ms, share_ms   --grad-transport hier (or auto picking it): comm_ms's phases,
//                the node's shared-memory sum, the node leaders' MPI sum between nodes (the max
//                over ranks is a leader's), and taking the result from the node's partial sum
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

#include "app/train_options.hpp"
#include "core/precision.hpp"
#include "core/setting.hpp"
#include "nn/settings.hpp"
#include "nn/step.hpp"
#include "parallel/comm.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ompml {

enum class ScaleMode { weak, strong };
template <>
struct EnumNames<ScaleMode> {
    static constexpr const char* what = "mode";
    static constexpr std::pair<ScaleMode, const char*> names[] = {{ScaleMode::weak, "weak"},
                                                                  {ScaleMode::strong, "strong"}};
};
// How the step sums the gradient: the transport's buckets started during backward (as training
// does), or one blocking MPI_Allreduce after backward (the alternative to compare).
enum class GradSync { avg, allreduce };
template <>
struct EnumNames<GradSync> {
    static constexpr const char* what = "gradient sum";
    static constexpr std::pair<GradSync, const char*> names[] = {{GradSync::avg, "avg"},
                                                                 {GradSync::allreduce, "allreduce"}};
};

// ompml-scale's options: what to train and how to run it come from ompml-train's own tables
// (the training settings of nn/settings.hpp and the run options of app/train_options.hpp, the
// entries in kScaleTrainKeys and kScaleRunKeys), with the study's defaults; the study adds only
// its own (mode, steps, warmup, grad_sync, csv, header).
struct ScaleOptions {
    TrainConfig cfg;  // --layers, --activation, --precision, --optimizer, --lr, ..., --seed, --batch
    TrainOptions run; // --backend, --bucket-mb, --grad-transport, --mpi-fp32-sum, --grad-dtype, --mpi-staging, --trace
    ScaleMode mode = ScaleMode::weak;
    GradSync grad_sync = GradSync::avg;
    int steps = 20;
    int warmup = 3;
    bool csv = false;
    bool header = false;
    ScaleOptions()
    {
        cfg.model.layers = {784, 2048, 2048, 10};
        cfg.opt.lr = 1e-4f; // the values do not matter for timing; keep them finite
    }
};

// The entries of ompml-train's tables that ompml-scale takes.
inline constexpr const char* kScaleTrainKeys[] = {"layers", "activation", "precision",         "optimizer",
                                                  "lr",     "momentum",   "weight_decay",      "clip",
                                                  "seed",   "batch",      "reproducible_ranks"};
inline constexpr const char* kScaleRunKeys[] = {"backend",     "bucket_mb", "grad_transport", "grad_dtype",
                                                "mpi_staging", "trace",     "mpi_fp32_sum"};

// The study's own options.
template <class F>
void for_each_scale_option(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--mode",
           .key = "mode",
           .help = "weak: --batch rows per rank | strong: --batch rows in total",
           .store = run_only},
      OMPML_FIELD(mode));
    f(Spec{.flag = "--steps", .key = "steps", .help = "timed steps", .range = kPositive, .store = run_only},
      OMPML_FIELD(steps));
    // Was --warmup, which names the learning-rate warmup in ompml-train: kept as an alias.
    f(Spec{.flag = "--warmup-steps,--warmup",
           .key = "warmup",
           .help = "untimed steps first (--warmup: the old name, until the next release)",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(warmup));
    f(Spec{.flag = "--grad-sync",
           .key = "grad_sync",
           .help = "avg: the step's gradient transport, buckets started during backward (as training does) | "
                   "allreduce: one blocking MPI_Allreduce after backward (the alternative to compare)",
           .store = run_only},
      OMPML_FIELD(grad_sync));
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

// Every table ompml-scale takes, each visited as f(spec, field) with field the accessor into
// ScaleOptions: the study's own, then the training settings and run options it takes.
template <class F>
void for_each_scale_setting(F&& f)
{
    const auto taken = [](const Spec& s, const auto& keys) {
        return std::find_if(std::begin(keys), std::end(keys),
                            [&](const char* k) { return std::string_view(k) == s.key; }) != std::end(keys);
    };
    for_each_scale_option(f);
    for_each_train_setting([&](const Spec& s, auto field) {
        if (taken(s, kScaleTrainKeys)) f(s, [field](auto& o) -> auto& { return field(o.cfg); });
    });
    for_each_train_option([&](const Spec& s, auto field) {
        if (taken(s, kScaleRunKeys)) f(s, [field](auto& o) -> auto& { return field(o.run); });
    });
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
    double node_ms = 0, inter_ms = 0, share_ms = 0; // the hierarchical sum's phases (hier; 0 otherwise)
    double loss_first = 0, loss_last = 0;           // mean loss over the global batch, first and last timed step
    int buckets = 0;
    // --reproducible-ranks N: the fixed order's step against the default mode's (the same options
    // with reproducible_ranks 0), timed in alternating steps; all 0 without the setting.
    double fixed_step_ms = 0, fixed_comm_ms = 0, default_step_ms = 0, default_comm_ms = 0;
    std::string transport; // "none" (1 rank), "shm", "hier" or "mpi", and its description
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
