// BlockingAllreduce (see blocking_sum.hpp): one MPI_Allreduce of the whole gradient per step.
#include "parallel/blocking_sum.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "parallel/mpi_check.hpp"

#include <climits>

namespace ompml {

BlockingAllreduce::BlockingAllreduce(MPI_Comm comm, int ranks, const MemorySpace& mem, float* grad, std::size_t n,
                                     bool stage)
    : GradientSum<float>(n), comm_(comm), size_(ranks), mem_(mem), grad_(grad)
{
    require(n <= static_cast<std::size_t>(INT_MAX),
            "gradient sum (blocking allreduce): " + std::to_string(n) + " floats exceed one MPI_Allreduce's int count");
    if (stage && size_ > 1) stage_.resize(n);
}

std::string BlockingAllreduce::describe() const
{
    return "one blocking MPI_Allreduce after backward (--grad-sync allreduce)";
}

void BlockingAllreduce::ready(std::size_t off, std::size_t n) { mark(off, n); }

void BlockingAllreduce::finish()
{
    const std::size_t bytes = size_ > 1 ? n_ * sizeof(float) : 0;
    finish_step(static_cast<std::int64_t>(bytes), [&] {
        if (size_ == 1) return; // the sum over one rank is the gradient itself
        float* buf = grad_;     // (n)
        Stopwatch copy;
        if (!stage_.empty()) {
            mem_.to_host(stage_.data(), grad_, bytes);
            buf = stage_.data();
        }
        cur_.copy_s += copy.seconds();
        const Stopwatch t;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(n_), MPI_FLOAT, MPI_SUM, comm_));
        cur_.mpi_s += t.seconds();
        copy.restart();
        if (!stage_.empty()) mem_.to_device(grad_, stage_.data(), bytes);
        cur_.copy_s += copy.seconds();
        cur_.buckets = 1;
        cur_.bytes = bytes;
    });
}

} // namespace ompml
