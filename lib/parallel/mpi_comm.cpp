// MpiComm (see mpi_comm.hpp).
#include "parallel/mpi_comm.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"

#include <climits>

namespace ompml {

MpiComm::MpiComm(MPI_Comm comm, Backend& be, std::size_t n, const GradSyncOptions& opt) : MpiReduceComm(comm), n_(n)
{
    avg_ = std::make_unique<GradientAverager>(comm_, be.memory(), n, opt);
    G_ = avg_->data();
}

void MpiComm::grad_ready(Backend& be, float* G, const LayerView& view)
{
    require(G == G_, "MpiComm::grad_ready: not the gradient buffer this communicator averages");
    // MPI, the staging copy or the other ranks read the buffer right away: the layer's
    // kernels must be done.
    if (size() > 1) be.synchronize();
    avg_->bucket_ready(view.w, view.count());
}

void MpiComm::finish_grads(Backend&, float* G, std::size_t n)
{
    require(G == G_ && n == n_, "MpiComm::finish_grads: not the gradient buffer this communicator averages");
    avg_->finish();
}

MpiReduceComm::MpiReduceComm(MPI_Comm comm) : comm_(comm)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void MpiReduceComm::sum(double* v, int n) { allreduce_sum(comm_, v, n); }

bool MpiReduceComm::any(bool local) { return any_rank(comm_, local); }

BlockingAllreduceComm::BlockingAllreduceComm(MPI_Comm comm, const MemorySpace& mem, std::size_t n)
    : MpiReduceComm(comm), stage_(&mem != &host_memory() ? n : 0)
{
    require(n <= static_cast<std::size_t>(INT_MAX),
            "BlockingAllreduceComm: " + std::to_string(n) + " floats exceed one MPI_Allreduce's int count");
}

void BlockingAllreduceComm::finish_grads(Backend& be, float* G, std::size_t n)
{
    be.synchronize();
    const trace::Span span("grad sum", trace::host, -1, size() > 1 ? static_cast<std::int64_t>(n * sizeof(float)) : 0);
    const Stopwatch t;
    float* buf = G;
    if (!stage_.empty()) {
        be.memory().to_host(stage_.data(), G, n * sizeof(float));
        buf = stage_.data();
    }
    if (size() > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_));
    if (!stage_.empty()) be.memory().to_device(G, stage_.data(), n * sizeof(float));
    last_s_ = t.seconds();
    trace::counter("grad bytes", size() > 1 ? static_cast<double>(n * sizeof(float)) : 0.0);
}

double MpiComm::comm_seconds() const
{
    const GradSyncStats& t = avg_->total();
    return t.mpi_s + t.copy_s;
}

} // namespace ompml
