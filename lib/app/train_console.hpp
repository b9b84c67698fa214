// What ompml-train prints, on rank 0: the start-up report, progress (a live line for an
// interactive single process; elsewhere, as under mpirun or sbatch, a plain line every
// --log-every steps or every 30 s: "step 120/940 epoch 1/2 (step 120/470 in it) loss 0.51 lr 0.001
// ..."; its loss is rank 0's batch), one line per epoch and the final report. It prints only; what
// happens at the loop's decision points (checkpoints, the stop flag, metrics, the trace) is the
// run policy's (app/run_policy.hpp), which calls it.
#pragma once

#include "app/train_setup.hpp"
#include "core/timer.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace ompml {

class TrainConsole {
public:
    TrainConsole(const MpiSession& mpi, const TrainRun& run);

    // Configuration, ranks, nodes and devices (collective: every rank reports its device).
    void print_start();
    void on_step(const StepReport& r);
    // comm_s: the communication seconds of this epoch (gradient sums and stop-flag reductions).
    void on_epoch(const EpochReport& r, double comm_s);
    // The time and how the run ended: the final accuracy, or where it stopped on a signal.
    // comm_s: the communication seconds of the whole run; test: the test split's final evaluation
    // (none after a stop signal; with a validation split res.test is the validation's);
    // best_epoch > 0: --keep-best's checkpoint, of that epoch and validation loss.
    void print_end(const TrainResult& res, double comm_s, const std::optional<EvalResult>& test, double best_val_loss,
                   std::int64_t best_epoch);

    // The gemms' rate at that many samples/s, and as a share of the GPUs' peak (0: unknown).
    double gflops(double samples_per_s) const;
    double peak_gflops() const { return peak_gflops_; }

private:
    double eta_seconds(std::int64_t step, double samples_per_s) const;
    std::string flops_text(double samples_per_s) const; // "12.3 GFLOP/s" (", 4.1% of peak" on a GPU)

    const MpiSession& mpi_;
    const TrainRun& run_;
    double peak_gflops_ = 0.0;                  // all ranks' devices together; 0: unknown (host cores)
    std::int64_t last_step_ = 0;                // where the run ends: epochs, or --max-steps
    bool live_ = false;                         // a live progress line (an interactive single process)
    bool plain_ = false;                        // plain progress lines (rank 0 where there is no live line)
    Stopwatch since_line_;                      // since the last plain progress line
    static constexpr double kLogSeconds = 30.0; // plain lines without --log-every: this often
    double last_live_ = -1.0;                   // epoch seconds of the last progress line
    double rate_ = 0.0;                         // samples/s of the last epoch, for the ETA
};

} // namespace ompml
