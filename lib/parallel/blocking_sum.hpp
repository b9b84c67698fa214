// BlockingAllreduce: what the scaling study compares the bucketed sums with (ompml-scale
// --grad-sync allreduce): no overlap, one blocking MPI_Allreduce of the whole fp32 gradient in
// finish(), after backward, staged through a host copy when the gradient is not host memory.
// ready() only checks the marks. Everything it does is exposed (wait_s = mpi_s); one bucket per
// step. With 1 rank it makes no MPI call and copies nothing.
#pragma once

#include "parallel/grad_sum.hpp"

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

namespace ompml {

class BlockingAllreduce final : public GradientSum<float> {
public:
    // grad: (n) floats in mem; stage: copy through host memory (mem is not host memory). n must
    // fit one MPI count (Error otherwise). ranks: comm's size. Makes no MPI call.
    BlockingAllreduce(MPI_Comm comm, int ranks, const MemorySpace& mem, float* grad, std::size_t n, bool stage);

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return size_ > 1 ? "mpi" : "none"; }

private:
    MPI_Comm comm_;
    int size_ = 1;
    const MemorySpace& mem_;
    float* grad_;              // (n) in mem_
    std::vector<float> stage_; // (n) host copy; empty unless staged on several ranks
};

} // namespace ompml
