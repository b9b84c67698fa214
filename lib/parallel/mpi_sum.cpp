// MpiSum (see mpi_sum.hpp): fp32 MPI_Iallreduce buckets, progressed by MPI_Testsome.
#include "parallel/mpi_sum.hpp"

#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"

#include <algorithm>
#include <exception>

namespace ompml {

MpiSum::MpiSum(MPI_Comm comm, float* buf, std::size_t n, double bucket_mb, bool device_memory, BucketDone done)
    : GradientSum<float>(n), comm_(comm), buf_(buf), device_memory_(device_memory), done_(std::move(done)),
      pending_(bucket_mb)
{
}

MpiSum::~MpiSum()
{
    const bool in_flight =
        std::any_of(requests_.begin(), requests_.end(), [](MPI_Request r) { return r != MPI_REQUEST_NULL; });
    // Unwinding from an error on this rank: the other ranks may never join these reductions, so
    // waiting could hang; the job is ending (abort_all or a collective error).
    if (in_flight && std::uncaught_exceptions() == 0)
        MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
}

std::string MpiSum::describe() const
{
    return std::string(kName) + (device_memory_ ? ", on device memory (CUDA-aware)" : ", on host memory");
}

void MpiSum::ready(std::size_t off, std::size_t n)
{
    if (!mark(off, n)) return;
    pending_.add(off, n, [this](std::size_t o, std::size_t m) { launch(o, m); });
    progress();
}

void MpiSum::launch(std::size_t off, std::size_t n)
{
    const trace::Span span("grad bucket", trace::host, -1, static_cast<std::int64_t>(n * sizeof(float)));
    MPI_Request req = MPI_REQUEST_NULL;
    const Stopwatch t;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf_ + off, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_, &req));
    cur_.mpi_s += t.seconds();
    buckets_.push_back({off, n, trace::next_id()});
    trace::async_begin("bucket", buckets_.back().trace_id, static_cast<std::int64_t>(n * sizeof(float)));
    requests_.push_back(req);
    ++cur_.buckets;
    cur_.bytes += n * sizeof(float);
}

void MpiSum::reduce_blocking(std::size_t off, std::size_t n)
{
    const Stopwatch t;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf_ + off, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_));
    cur_.mpi_s += t.seconds();
    ++cur_.buckets;
    cur_.bytes += n * sizeof(float);
    if (done_) done_(off, n);
}

void MpiSum::complete(int index)
{
    const Bucket& b = buckets_[static_cast<std::size_t>(index)];
    trace::async_end("bucket", b.trace_id);
    if (done_) done_(b.off, b.n);
}

void MpiSum::progress()
{
    if (requests_.empty()) return;
    std::vector<int> done(requests_.size());
    int count = 0;
    const Stopwatch t;
    MPI_CHECK(
        MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &count, done.data(), MPI_STATUSES_IGNORE));
    cur_.mpi_s += t.seconds();
    if (count != MPI_UNDEFINED) // else every request had already finished
        for (int i = 0; i < count; ++i) complete(done[static_cast<std::size_t>(i)]);
}

void MpiSum::wait_all()
{
    for (;;) {
        int index = MPI_UNDEFINED;
        const Stopwatch t;
        MPI_CHECK(MPI_Waitany(static_cast<int>(requests_.size()), requests_.data(), &index, MPI_STATUS_IGNORE));
        cur_.mpi_s += t.seconds();
        if (index == MPI_UNDEFINED) break; // no active request left
        complete(index);
    }
}

void MpiSum::finish()
{
    finish_step(static_cast<std::int64_t>(n_ * sizeof(float)), [this] {
        pending_.drain([this](std::size_t o, std::size_t m) { reduce_blocking(o, m); });
        if (!requests_.empty()) wait_all();
        buckets_.clear();
        requests_.clear();
    });
}

} // namespace ompml
