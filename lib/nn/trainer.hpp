// The training loop, backend- and transport-agnostic: epochs of batches from a BatchSource,
// forward + fused loss/backward, gradient sum through a Comm, optional clipping, one optimizer
// step, evaluation at each epoch's end, and hooks where drivers print, log and checkpoint.
//
// Seams for data parallelism (lib/parallel):
//   - Comm: rank/size, grad_ready() per layer bucket during backward (start a non-blocking
//     allreduce there), finish_grads() before the optimizer (wait; afterwards the flat
//     gradient must be the SUM over ranks: each rank's dlogits are already scaled by
//     1 / global_rows, so the sum is the global batch mean), and sum() of a few host doubles
//     (loss sums, counts). SingleComm is the one-rank default (all no-ops).
//   - BatchSource: this rank's slice of each global batch (io::Loader is one).
//   - Hooks run on every rank; the driver decides that only rank 0 prints and writes.
//
// Step and epoch counting: state.step = optimizer steps done; state.epoch = epochs completed
// (0-based index of the epoch in progress); state.step_in_epoch = steps done in it. The LR and
// the sample order are functions of these and the config only, so resume is exact.
//
// Non-finite values stop the run with an Error naming the step ("step 123: loss is nan
// (non-finite) ..."), before the optimizer step that would spread them into the parameters,
// and so before any checkpoint of that state (write_checkpoint refuses non-finite tensors too):
//   - this rank's loss, every step (already on the host: free). It is rank-local: on P ranks
//     the rank whose data diverged throws alone and the driver ends the job (MPI_Abort); the
//     other ranks' gradient sum holds the NaN as well, so they stop at the same step when
//     clipping is on (next item), or wait until aborted. A collective check would cost an
//     allreduce per step;
//   - the global gradient norm, when clipping computes it (cfg.clip > 0): the same value on
//     every rank after the sum, so every rank stops at the same step;
//   - the epoch's training loss and every evaluation loss, which are sums over ranks.
#pragma once

#include "backend/backend.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ompml {

// Everything that defines a run (and is stored in checkpoints under /config).
struct TrainConfig {
    MlpConfig model;
    OptimizerConfig opt;
    ScheduleConfig sched;
    std::uint64_t seed = 1;
    int batch = 128; // global batch (all ranks together)
    int epochs = 10;
    float clip = 0.0f;     // max global grad L2 norm; 0 = off
    int eval_batch = 1000; // global batch for evaluation
};

// A batch on the device: this rank's rows of one global batch.
struct DeviceBatch {
    int rows = 0;                    // this rank's rows (may be 0)
    int global_rows = 0;             // rows of the whole global batch (the averaging denominator)
    const float* x = nullptr;        // (rows, IN), device
    const std::int32_t* y = nullptr; // (rows), device
    std::int64_t step_in_epoch = 0;  // which batch of the epoch this is (0-based)
};

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
    // Layer `view`'s gradients [view.w, view.w + view.count()) of G are final on this rank.
    virtual void grad_ready(Backend&, float* /*G*/, const LayerView& /*view*/) {}
    // After backward: on return G (n) holds the sum over ranks.
    virtual void finish_grads(Backend&, float* /*G*/, std::size_t /*n*/) {}
    // In-place sum over ranks of n host doubles.
    virtual void sum(double* /*v*/, int /*n*/) {}
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
EvalResult evaluate(Mlp& model, BatchSource& data, Comm& comm, bool confusion = false);

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
    Trainer(Backend& be, const TrainConfig& cfg, Mlp& model, Optimizer& opt, Comm& comm);

    // The schedule's total for cosine: epochs * steps_per_epoch, fixed at a fresh start.
    static ScheduleConfig resolve_schedule(const TrainConfig& cfg, std::int64_t steps_per_epoch);

    // One step on one batch; returns this rank's loss stats. Public for tests and benches.
    // Throws Error when the loss or (with clipping) the gradient norm is not finite, before the
    // optimizer step; `step` (1-based, as reported) names the step in that message, 0: unnamed.
    XentStats train_step(const DeviceBatch& b, float lr, std::int64_t step = 0);

    // Trains from `start` until cfg.epochs epochs are complete or limits.max_steps is reached.
    // test may be null (no evaluation).
    TrainResult run(BatchSource& train, BatchSource* test, const TrainState& start, const RunLimits& limits,
                    const Hooks& hooks = {});

private:
    Backend& be_;
    TrainConfig cfg_;
    Mlp& model_;
    Optimizer& opt_;
    Comm& comm_;
};

} // namespace ompml
