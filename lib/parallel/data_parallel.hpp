// The data-parallel training step, wired in one place for ompml-train and ompml-scale alike:
// the model, its optimizer and the ranks' gradient sum. A GradSumPlan (grad_sum.hpp) chooses the
// transport for the communicator and says where the model must allocate its gradient; make_step
// (nn/step.hpp) chooses the number formats and builds the model, which owns that gradient, the
// optimizer, and the transport over the model's gradient. With cfg.reproducible_ranks the plan is
// asked for a transport in the fixed split-tree order (GradSumOptions::fixed_order).
#pragma once

#include "nn/step.hpp"
#include "parallel/grad_sum.hpp"

#include <mpi.h>

#include <memory>

namespace ompml {

struct ParallelStep {
    std::unique_ptr<GradSumPlan> plan; // first: the step's gradient lives in its memory
    std::unique_ptr<Step> step;
};

// How the step's gradient is summed: the plan's transports (GradSumPlan::make), or one blocking
// MPI_Allreduce after backward (ompml-scale's --grad-sync allreduce; fp32 gradients only).
enum class SumMode { buckets, blocking_allreduce };

// Collective over comm: every rank builds the same step (same cfg, agreed on before).
ParallelStep make_parallel_step(MPI_Comm comm, Backend& be, const TrainConfig& cfg, int max_batch, Precision grad_dtype,
                                const GradSumOptions& opt, SumMode mode = SumMode::buckets);

} // namespace ompml
