// One training step, and the one place where the run's number formats are chosen.
//
// Step is what the training loop, ompml-scale and the bench call: forward, loss + backward with
// the ranks' gradient sum started per layer, the sum's completion, clipping, the optimizer
// step. make_step picks, once, the model's gemm operand type T (cfg.model.precision) and its
// gradient type G (grad_dtype, bf16 only where ranks exchange it: a 1-rank run keeps fp32
// gradients, bitwise the fp32 run), and builds Mlp<T, G>, its optimizer and its gradient sum
// from them. Below it nothing asks which precision runs: the types decide.
//
// With cfg.reproducible_ranks = N, the step's sums over the global batch follow one binary tree
// whatever the rank count (nn/model.hpp BatchTree, kernels/tree_sum.hpp), and the transport must
// add the ranks' subtrees in the same tree (parallel/data_parallel.hpp asks for such a transport
// when the mode is on). N must be a power of two that
// the rank count divides, and the ranks exchange fp32 gradients (a bf16 gradient would be rounded
// at each rank's subtree, whose size depends on the rank count): make_step throws Error otherwise.
//
// Non-finite values stop the step with an Error naming it ("step 123: loss is nan
// (non-finite) ..."), before the optimizer step that would spread them into the parameters, and
// so before any checkpoint of that state:
//   - this rank's loss, every step (already on the host: free). It is rank-local: on P ranks the
//     rank whose data diverged throws alone and the driver ends the job (MPI_Abort); the other
//     ranks' gradient sum holds the NaN as well, so they stop at the same step when clipping is
//     on, or wait until aborted. A collective check would cost an allreduce per step;
//   - the global gradient norm, when clipping computes it (cfg.clip > 0): the same value on
//     every rank after the sum, so every rank stops at the same step.
#pragma once

#include "nn/gradient_sum.hpp"
#include "nn/model.hpp"
#include "nn/optimizer.hpp"

#include <cstdint>
#include <functional>
#include <memory>
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
    // The fixed summation tree (--reproducible-ranks N, nn/model.hpp BatchTree): every global batch
    // in N chunks added in one binary tree, so every rank count dividing N gives the same bits.
    // 0: off (each rank sums its rows in order; ranks in split-tree order).
    int reproducible_ranks = 0;
};

// A batch on the device: this rank's rows of one global batch.
struct DeviceBatch {
    int rows = 0;                    // this rank's rows (may be 0)
    int global_rows = 0;             // rows of the whole global batch (the averaging denominator)
    const float* x = nullptr;        // (rows, IN), device
    const std::int32_t* y = nullptr; // (rows), device
    std::int64_t step_in_epoch = 0;  // which batch of the epoch this is (0-based)
};

class Step {
public:
    virtual ~Step() = default;
    // One step on one batch; returns this rank's loss stats. Throws Error when the loss or (with
    // clipping) the gradient norm is not finite, before the optimizer step; `step` (1-based, as
    // reported) names the step in that message, 0: unnamed.
    virtual XentStats run(const DeviceBatch& b, float lr, std::int64_t step = 0) = 0;

    virtual Model& model() = 0;
    virtual Optimizer& optimizer() = 0;
    // The gradient sum: what it is (for the run's log: "shared memory (one node, 2 ranks)"), its
    // kind ("none", "shm", "mpi") and its time.
    virtual std::string sum_describe() const = 0;
    virtual const char* sum_kind() const = 0;
    virtual const GradSyncStats& sum_last() const = 0;
    virtual const GradSyncStats& sum_total() const = 0;

    // For checking a gradient sum (ompml-scale): forward and backward, with the ranks' sum as a
    // step runs it (summed) or without (this rank's own gradient); the gradient on the host; and
    // its type (what the ranks exchange).
    virtual XentStats gradient(const DeviceBatch& b, bool summed) = 0;
    virtual std::vector<float> download_gradient() const = 0; // (P), bf16 widened
    virtual Precision gradient_type() const = 0;
};

// How the gradient is summed over ranks, as the layer above lib/nn (lib/parallel) provides it:
// the ranks, where the model must allocate its gradient so the transport can sum it (null: the
// backend's memory), and how to build the transport over it for each gradient type (null: one
// rank, NoSum).
struct GradSums {
    int rank = 0, ranks = 1;
    const MemorySpace* memory = nullptr;
    std::function<std::unique_ptr<GradientSum<float>>(float*, std::size_t)> fp32;
    std::function<std::unique_ptr<GradientSum<bf16>>(bf16*, std::size_t)> bf16;
};

// The step for cfg on be with room for max_batch rows per rank. grad_dtype: the type the ranks
// exchange (fp32 | bf16); with one rank the gradient stays fp32 whatever it says.
std::unique_ptr<Step> make_step(Backend& be, const TrainConfig& cfg, int max_batch,
                                Precision grad_dtype = Precision::fp32, const GradSums& sums = {});

// A model alone, for evaluation and prediction: its operand type from cfg.precision, as
// make_step chooses it (fp32 gradients; no optimizer, no sum).
std::unique_ptr<Model> make_model(Backend& be, const MlpConfig& cfg, int max_batch);

// The rules of --reproducible-ranks N (chunks; 0: off): a power of two, a rank count that
// divides it, fp32 gradients. Throws Error naming both numbers (or the dtype) otherwise.
void check_reproducible(int chunks, int ranks, Precision grad_dtype);

// Stops the run when v (a loss or norm, the same on every rank or this rank's own) is not
// finite: "step 123: <what> is nan (non-finite)<context>: stopped; ...".
void require_finite(double v, std::int64_t step, const std::string& what, const std::string& context);

} // namespace ompml
