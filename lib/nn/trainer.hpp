// The training loop, backend-, precision- and transport-agnostic: epochs of batches from a
// BatchSource, one Step per batch (nn/step.hpp: forward, loss + backward with the gradient sum,
// clipping, the optimizer), evaluation at each epoch's end, and hooks where drivers print, log
// and checkpoint.
//
// Seams for data parallelism (lib/parallel):
//   - the Step's gradient sum (nn/gradient_sum.hpp), built with the step (make_step);
//   - Comm: rank/size, sum() of a few host doubles (loss sums, counts) and any() (the stop
//     flag). SingleComm is the one-rank default (no-ops);
//   - BatchSource: this rank's slice of each global batch (io::Loader is one).
//   - Hooks run on every rank; the driver decides that only rank 0 prints and writes.
//
// Step and epoch counting: state.step = optimizer steps done; state.epoch = epochs completed
// (0-based index of the epoch in progress); state.step_in_epoch = steps done in it. The LR and
// the sample order are functions of these and the config only, so resume is exact.
//
// Non-finite values stop the run with an Error naming the step (nn/step.hpp for the loss and
// the gradient norm; here the epoch's training loss and every evaluation loss, which are sums
// over ranks).
#pragma once

#include "nn/model.hpp"
#include "nn/optimizer.hpp"
#include "nn/step.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ompml {

class BatchSource {
public:
    virtual ~BatchSource() = default;
    virtual std::int64_t steps_per_epoch() const = 0;
    virtual std::uint64_t samples() const = 0; // in the whole split (all ranks)
    virtual void start_epoch(std::int64_t epoch, std::int64_t first_step) = 0;
    virtual bool next(DeviceBatch& out) = 0; // false at the epoch's end
};

class Comm {
public:
    virtual ~Comm() = default;
    virtual int rank() const { return 0; }
    virtual int size() const { return 1; }
    // In-place sum over ranks of n host doubles.
    virtual void sum(double* /*v*/, int /*n*/) {}
    // In-place sum over ranks of n host doubles, each added in the split tree over rank index
    // (core/split_tree.hpp): the same values on every rank, and, with each rank's value a subtree
    // of a BatchTree, the whole tree's sums whatever the rank count (the steps' losses).
    virtual void tree_sum(double* /*v*/, int /*n*/) {}
    // True on every rank when `local` is true on some rank (the stop flag).
    virtual bool any(bool local) { return local; }
};
class SingleComm final : public Comm {};

struct TrainState {
    std::int64_t step = 0;          // optimizer steps done
    std::int64_t epoch = 0;         // epochs completed
    std::int64_t step_in_epoch = 0; // steps done in the epoch in progress
    // Running sums of the epoch in progress (global), so a resumed epoch reports the same loss.
    double epoch_loss_sum = 0.0;
    double epoch_rows = 0.0;
    double elapsed_s = 0.0; // training wall time before this process (reporting only)
};

struct EvalResult {
    double loss = 0.0;     // mean cross-entropy
    double accuracy = 0.0; // fraction correct
    std::uint64_t samples = 0;
    std::vector<std::int64_t> confusion; // (C, C): [true][pred], when asked for
};

// Loss and accuracy of the model over a whole split (summed over ranks through comm). With
// confusion the logits are copied to the host per batch to take the argmax.
EvalResult evaluate(Model& model, BatchSource& data, Comm& comm, bool confusion = false);

struct StepReport {
    std::int64_t step, epoch, step_in_epoch, steps_per_epoch;
    double loss; // this rank's batch mean loss
    float lr;
    double epoch_seconds; // since the epoch (or the resumed part of it) started
    double epoch_samples; // global samples trained in that time
};

struct EpochReport {
    std::int64_t epoch; // epochs completed (1-based label of the epoch just finished)
    std::int64_t step;
    double train_loss; // mean over the epoch's global samples
    double test_loss, test_acc;
    float lr;       // lr of the epoch's last step
    double seconds; // training time of this epoch (this process), evaluation excluded
    double samples_per_s;
    double total_seconds;
};

struct TrainResult {
    TrainState state;
    EvalResult test;
    double seconds = 0.0;       // wall time of this run() (training + evaluation)
    bool stopped_early = false; // max_steps reached before the last epoch ended
    bool interrupted = false;   // Hooks::should_stop said stop: checkpointed, not evaluated
};

struct Hooks {
    std::function<void(const StepReport&)> on_step;   // after every step
    std::function<void(const EpochReport&)> on_epoch; // after each epoch's evaluation
    // When a checkpoint is due (every checkpoint_every steps, and at the end); state is
    // consistent with the model and optimizer at that moment.
    std::function<void(const TrainState&)> on_checkpoint;
    // Asked at every step boundary where stopping leaves a resumable state (after a step inside
    // an epoch, and after an epoch's evaluation), unless the run ends there anyway. It is a
    // COLLECTIVE point: every rank calls it at the same steps, so the driver may reduce a flag
    // there (SIGUSR1 on any rank). True: the trainer writes a checkpoint through on_checkpoint
    // (unless this state was just written), skips the final evaluation and returns with
    // interrupted set. A signal is thus acted on within one step.
    std::function<bool(const TrainState&)> should_stop;
};

struct RunLimits {
    std::int64_t max_steps = 0;        // stop when state.step reaches it (0: no limit)
    std::int64_t checkpoint_every = 0; // steps (0: only at the end)
};

class Trainer {
public:
    Trainer(const TrainConfig& cfg, Step& step, Comm& comm);

    // The schedule's total for cosine: epochs * steps_per_epoch, fixed at a fresh start.
    static ScheduleConfig resolve_schedule(const TrainConfig& cfg, std::int64_t steps_per_epoch);

    // One step on one batch (Step::run). Public for tests and benches.
    XentStats train_step(const DeviceBatch& b, float lr, std::int64_t step = 0) { return step_.run(b, lr, step); }

    // Trains from `start` until cfg.epochs epochs are complete or limits.max_steps is reached.
    // test may be null (no evaluation).
    TrainResult run(BatchSource& train, BatchSource* test, const TrainState& start, const RunLimits& limits,
                    const Hooks& hooks = {});

private:
    TrainConfig cfg_;
    Step& step_;
    Comm& comm_;
};

} // namespace ompml
