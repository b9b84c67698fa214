// What ompml-train shows and writes around the training loop: the start-up report, the live
// progress line and one line per epoch (rank 0), the JSONL metrics log, the checkpoints, the
// stop flag (every rank) and the final report. Trainer::run calls it through Hooks.
#pragma once

#include "app/test_env.hpp"
#include "app/train_setup.hpp"
#include "io/metrics.hpp"

#include <memory>
#include <string>

namespace ompml {

class TrainConsole {
public:
    // trace may be null (no --trace); else it is written at each checkpoint and at the end.
    TrainConsole(const MpiSession& mpi, const TrainConfig& cfg, const TrainOptions& opt, const TrainData& data,
                 const ResumePoint& resume, TrainModel& model, MpiComm& comm, TraceFile* trace);

    // Configuration, ranks, nodes and devices (collective: every rank reports its device).
    void print_start(const Backend& be, const DeviceBinding& binding);

    // Console, metrics and checkpoints (rank 0), the stop flag (all ranks, collective).
    Hooks hooks();

    // Writes the trace (collective), then (rank 0) the time and how the run ended: the final
    // accuracy, or where it stopped on a signal.
    void print_end(const TrainResult& res);

private:
    void on_step(const StepReport& r);
    void on_epoch(const EpochReport& r);
    bool should_stop(const TrainState& s);
    double comm_seconds() const; // gradient sums and stop-flag reductions so far
    double eta_seconds(std::int64_t step, double samples_per_s) const;
    double gflops(double samples_per_s) const;          // the gemms' rate at that many samples/s
    std::string flops_text(double samples_per_s) const; // "12.3 GFLOP/s" (", 4.1% of peak" on a GPU)

    const MpiSession& mpi_;
    const TrainConfig& cfg_;
    const TrainOptions& opt_;
    const TrainData& data_;
    TrainState start_;
    std::string resume_path_;
    TrainModel& model_;
    MpiComm& comm_;
    TraceFile* trace_;
    double peak_gflops_ = 0.0; // all ranks' devices together; 0: unknown (host cores)
    std::unique_ptr<MetricsLog> metrics_;
    test_env::FaultInject fault_ = test_env::fault_inject();
    std::int64_t hold_step_ = test_env::hold_step();
    std::int64_t last_step_ = 0; // where the run ends: epochs, or --max-steps
    bool live_ = false;          // a live progress line (an interactive single process)
    double last_live_ = -1.0;    // epoch seconds of the last progress line
    double rate_ = 0.0;          // samples/s of the last epoch, for the ETA
    double flag_s_ = 0.0;        // time in the stop-flag reductions (communication too)
    double comm_at_epoch_ = 0.0; // communication seconds at the last epoch line
};

} // namespace ompml
