// ompml-train's steps before the training loop, each a function the driver calls in order and
// a test can call without the program: flags -> where to start (fresh or a checkpoint) -> the
// run's configuration -> data -> the training step (model, optimizer, gradient sum). Every step
// that can fail on some ranks only is collective (parallel/comm.hpp): all ranks stop together,
// with the failing rank's message.
#pragma once

#include "app/train_options.hpp"
#include "backend/backend.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "nn/trainer.hpp"
#include "parallel/comm.hpp"
#include "parallel/data_parallel.hpp"
#include "parallel/trace_file.hpp"

#include <memory>
#include <optional>
#include <set>
#include <string>

namespace ompml {

// What the command line says: the hyperparameters, how to run, and which flags were given.
struct TrainFlags {
    TrainConfig cfg;
    TrainOptions opt;
    std::set<std::string> given; // keys (nn/settings.hpp, app/train_options.hpp) of the flags given
};

// Parses ompml-train's command line into flags (every rank parses the same one). Returns the
// exit status when there is nothing to train: 0 after --help, 2 after a usage error (printed as
// one line where print is true). Derived defaults are filled in (--weight-decay: 0.01 for
// adamw), and rules between flags are checked (CollectiveError: every rank holds the same).
std::optional<int> parse_train_flags(int argc, char** argv, bool print, TrainFlags& out);

// Collective: --checkpoint must not name a file that is not ours (the dataset, a text file, a
// directory): "--checkpoint F is a dataset file ...". Rank 0 writes it; every rank stops.
void check_checkpoint_flag(const MpiSession& mpi, const TrainOptions& opt);

// Where the run starts: a checkpoint (--resume FILE, or --resume auto finding --checkpoint FILE
// or FILE.prev), or fresh. Collective: every rank reads the same file.
struct ResumePoint {
    std::optional<Checkpoint> ck;
    std::string path; // of the checkpoint; "" for a fresh start
    TrainState start() const { return ck ? ck->state : TrainState{}; }
};
ResumePoint choose_resume(const MpiSession& mpi, const TrainOptions& opt);

// The run's hyperparameters: the flags for a fresh start; when resuming, the checkpoint's,
// where a fixed setting given as a flag must equal the stored one and a may_change setting
// (--epochs) given as a flag replaces it (nn/settings.hpp). Also --data: the checkpoint's
// dataset unless given.
TrainConfig resolve_config(TrainFlags& flags, const ResumePoint& resume);

// The training and test loaders of this rank (collective), checked against the model's widths
// and, when resuming, the checkpoint's dataset.
struct TrainData {
    std::unique_ptr<Loader> train, test;
    DataDesc desc; // what checkpoints record
};
TrainData open_data(const MpiSession& mpi, Backend& be, const TrainOptions& opt, const TrainConfig& cfg,
                    const ResumePoint& resume);

// A fresh start fixes what depends on the data: the step schedule's --step-epochs in steps
// and the cosine's length (stored in the checkpoint, so a resumed run keeps them).
void fix_schedule(TrainConfig& cfg, const TrainOptions& opt, const TrainData& data, const ResumePoint& resume);

// Collective: every rank must run the same configuration; a mismatch stops all, naming it; and
// --reproducible-ranks must suit the rank count (nn/step.hpp check_reproducible).
void agree_on_run(const MpiSession& mpi, const TrainConfig& cfg, const TrainOptions& opt, const TrainData& data,
                  const ResumePoint& resume);

// The data-parallel training step (parallel/data_parallel.hpp: the model, its optimizer and the
// ranks' gradient sum), restored from the checkpoint or initialised from the seed, and rank 0's
// parameters broadcast so every rank starts from the same ones (collective).
ParallelStep build_step(const MpiSession& mpi, Backend& be, const TrainConfig& cfg, const TrainOptions& opt,
                        const TrainData& data, ResumePoint& resume);

// --trace FILE: the run's timeline (collective; null without --trace). Recording starts here,
// for the --trace-steps window; device spans wait for be's queued work (core/trace.hpp).
std::unique_ptr<TraceFile> open_trace(const MpiSession& mpi, const TrainOptions& opt, const Backend& be,
                                      std::size_t params);

// Everything ompml-train sets up before its loop, in the order the driver makes it.
struct TrainRun {
    TrainOptions opt; // how it runs
    TrainConfig cfg;  // what it trains
    DeviceBinding binding;
    ResumePoint resume;
    std::unique_ptr<Backend> be;
    TrainData data;
    ParallelStep step;
    std::unique_ptr<TraceFile> trace; // null without --trace
};

} // namespace ompml
