// What happens at the decision points of ompml-train's loop (the loop decides when: Trainer::run
// in nn/trainer.hpp). At a checkpoint, rank 0 writes it and every rank writes the trace (a
// preempted run keeps both up to there); at each step boundary where stopping is possible, the
// ranks reduce the stop flag (SIGUSR1 or SIGTERM on any rank); rank 0 keeps the metrics log
// (docs/metrics.md): a header record at the start, a step record every --metrics-every steps (the
// step's loss summed over the ranks: a collective at those steps), an epoch record after each
// epoch, and an end record however the run ends (also mid-epoch: --max-steps, a signal). With a
// validation split the loop evaluates it each epoch, and the test split is evaluated once, here,
// at the end (not after a stop signal); --keep-best writes the checkpoint of the lowest validation
// loss so far beside the run's (rank 0; its value is kept in every checkpoint, so a resumed run
// knows the best to beat). What
// there is to print goes to the console; the test-only hook gets its turns here and nowhere else.
#pragma once

#include "app/test_env.hpp"
#include "app/train_console.hpp"
#include "app/train_setup.hpp"
#include "io/metrics.hpp"

#include <cmath>
#include <memory>

namespace ompml {

class RunPolicy {
public:
    // comm: the ranks' reductions (the loop's Comm), for the stop flag and step records.
    RunPolicy(const MpiSession& mpi, TrainRun& run, TrainConsole& console, Comm& comm);

    Hooks hooks(); // for Trainer::run
    // After the loop: the trace (collective), the end record, then the console's end report.
    void finish(const TrainResult& res);

private:
    void on_step(const StepReport& r);
    void on_epoch(const EpochReport& r);
    void on_checkpoint(const TrainState& s);
    bool should_stop(const TrainState& s);
    // Communication so far: the gradient sums, and the stop-flag reductions.
    double comm_seconds() const;
    void write_record(const JsonRecord& r); // rank 0 with --metrics

    const MpiSession& mpi_;
    TrainRun& run_;
    TrainConsole& console_;
    Comm& comm_;
    void keep_best(const EpochReport& r);

    std::unique_ptr<MetricsLog> metrics_; // rank 0 with --metrics
    test_env::TestHook test_;
    double flag_s_ = 0.0;        // time in the stop-flag reductions
    double comm_at_epoch_ = 0.0; // communication seconds at the last epoch's end
    double trained_s_ = 0.0;     // training seconds before the epoch in progress (all processes)
    double best_ = NAN;          // --keep-best: the lowest validation loss so far (NaN: none yet)
    std::int64_t best_epoch_ = 0;
};

} // namespace ompml
