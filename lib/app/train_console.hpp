// What ompml-train prints, on rank 0: the start-up report, the live progress line (an
// interactive single process), one line per epoch and the final report. It prints only; what
// happens at the loop's decision points (checkpoints, the stop flag, metrics, the trace) is the
// run policy's (app/run_policy.hpp), which calls it.
#pragma once

#include "app/train_setup.hpp"

#include <cstdint>
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
    // comm_s: the communication seconds of the whole run.
    void print_end(const TrainResult& res, double comm_s);

    // The gemms' rate at that many samples/s, and as a share of the GPUs' peak (0: unknown).
    double gflops(double samples_per_s) const;
    double peak_gflops() const { return peak_gflops_; }

private:
    double eta_seconds(std::int64_t step, double samples_per_s) const;
    std::string flops_text(double samples_per_s) const; // "12.3 GFLOP/s" (", 4.1% of peak" on a GPU)

    const MpiSession& mpi_;
    const TrainRun& run_;
    double peak_gflops_ = 0.0;   // all ranks' devices together; 0: unknown (host cores)
    std::int64_t last_step_ = 0; // where the run ends: epochs, or --max-steps
    bool live_ = false;          // a live progress line (an interactive single process)
    double last_live_ = -1.0;    // epoch seconds of the last progress line
    double rate_ = 0.0;          // samples/s of the last epoch, for the ETA
};

} // namespace ompml
