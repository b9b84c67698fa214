// make_parallel_step (data_parallel.hpp).
#include "parallel/data_parallel.hpp"

#include "core/check.hpp"
#include "parallel/mpi_check.hpp"

namespace ompml {

ParallelStep make_parallel_step(MPI_Comm comm, Backend& be, const TrainConfig& cfg, int max_batch, Precision grad_dtype,
                                const GradSumOptions& opt, SumMode mode)
{
    ParallelStep p;
    GradSumOptions o = opt;
    o.fixed_order = o.fixed_order || cfg.reproducible_ranks > 0; // the ranks' subtrees in the batch's tree
    p.plan = std::make_unique<GradSumPlan>(comm, be.memory(), o);
    const GradSumPlan& plan = *p.plan;
    GradSums sums;
    MPI_CHECK(MPI_Comm_rank(comm, &sums.rank));
    sums.ranks = plan.ranks();
    sums.memory = &plan.gradient_memory();
    if (mode == SumMode::blocking_allreduce) {
        require(grad_dtype == Precision::fp32 || sums.ranks == 1,
                "--grad-dtype bf16 needs the bucketed gradient sum (the plain MPI_Allreduce is fp32)");
        sums.fp32 = [&plan](float* g, std::size_t n) { return plan.make_blocking_allreduce(g, n); };
    } else {
        sums.fp32 = [&plan](float* g, std::size_t n) { return plan.make<float>(g, n); };
        sums.bf16 = [&plan](bf16* g, std::size_t n) { return plan.make<bf16>(g, n); };
    }
    p.step = make_step(be, cfg, max_batch, grad_dtype, sums);
    return p;
}

} // namespace ompml
