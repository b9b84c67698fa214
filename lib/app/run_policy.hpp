// What happens at the decision points of ompml-train's loop (the loop decides when: Trainer::run
// in nn/trainer.hpp). At a checkpoint, rank 0 writes it and every rank writes the trace (a
// preempted run keeps both up to there); at each step boundary where stopping is possible, the
// ranks reduce the stop flag (SIGUSR1 or SIGTERM on any rank); after each epoch rank 0 appends a
// metrics record. What there is to print goes to the console; the test-only hook gets its turns
// here and nowhere else.
#pragma once

#include "app/test_env.hpp"
#include "app/train_console.hpp"
#include "app/train_setup.hpp"
#include "io/metrics.hpp"

#include <memory>

namespace ompml {

class RunPolicy {
public:
    // comm: the ranks' reductions (the loop's Comm), for the stop flag.
    RunPolicy(const MpiSession& mpi, TrainRun& run, TrainConsole& console, Comm& comm);

    Hooks hooks(); // for Trainer::run
    // After the loop: the trace (collective), then the console's end report.
    void finish(const TrainResult& res);

private:
    void on_step(const StepReport& r);
    void on_epoch(const EpochReport& r);
    void on_checkpoint(const TrainState& s);
    bool should_stop(const TrainState& s);
    // Communication so far: the gradient sums, and the stop-flag reductions.
    double comm_seconds() const;

    const MpiSession& mpi_;
    TrainRun& run_;
    TrainConsole& console_;
    Comm& comm_;
    std::unique_ptr<MetricsLog> metrics_; // rank 0 with --metrics
    test_env::TestHook test_;
    double flag_s_ = 0.0;        // time in the stop-flag reductions
    double comm_at_epoch_ = 0.0; // communication seconds at the last epoch's end
};

} // namespace ompml
