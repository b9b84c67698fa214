// MpiExchange (see mpi_exchange.hpp): per bucket an alltoall of bf16 chunks, the owner's fp32 sum
// in rank order, an allgather of the rounded sums. MPI sends straight from the bf16 buffer and
// gathers straight into it: nothing here converts a whole bucket.
#include "parallel/mpi_exchange.hpp"

#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"

#include <algorithm>
#include <exception>

namespace ompml {
namespace {

constexpr std::size_t kBlock = 2048; // elements accumulated per pass, in L1

} // namespace

MpiExchange::MpiExchange(MPI_Comm comm, bf16* buf, std::size_t n, double bucket_mb, BucketDone done)
    : GradientSum<bf16>(n), comm_(comm), buf_(buf), done_(std::move(done)), pending_(bucket_mb)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    MPI_CHECK(MPI_Comm_dup(comm_, &gather_comm_));
}

MpiExchange::~MpiExchange()
{
    // Unwinding from an error on this rank: the other ranks may never join these collectives, so
    // neither wait nor free the communicator; the job is ending.
    if (std::uncaught_exceptions() > 0) return;
    const bool in_flight =
        std::any_of(requests_.begin(), requests_.end(), [](MPI_Request r) { return r != MPI_REQUEST_NULL; });
    if (in_flight) MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    MPI_CHECK(MPI_Comm_free(&gather_comm_));
}

std::string MpiExchange::describe() const { return std::string("MPI on host memory") + dtype_text; }

void MpiExchange::ready(std::size_t off, std::size_t n)
{
    if (!mark(off, n)) return;
    pending_.add(off, n, [this](std::size_t o, std::size_t m) { launch(o, m, false); });
    progress();
}

// Bucket [off, off + n): rank q owns chunk q = [q c, min((q + 1) c, n)).
void MpiExchange::launch(std::size_t off, std::size_t n, bool blocking)
{
    const trace::Span span("grad bucket", trace::host, -1, static_cast<std::int64_t>(n * sizeof(bf16)));
    const std::size_t P = static_cast<std::size_t>(size_), c = (n + P - 1) / P;
    const std::size_t me = static_cast<std::size_t>(rank_);
    const std::size_t k = buckets_.size();
    if (wire_.size() <= k) wire_.resize(k + 1); // moves the inner vectors: their data stays put
    Wire& w = wire_[k];
    if (w.recv.size() < P * c) w.recv = std::vector<bf16>(P * c);
    w.counts.resize(P);
    w.displs.resize(P);
    for (std::size_t q = 0; q < P; ++q) {
        w.counts[q] = static_cast<int>(std::min(n, (q + 1) * c) - std::min(n, q * c));
        w.displs[q] = static_cast<int>(q * c);
    }
    // Every other rank's chunk goes to its owner; this rank receives the others' copies of its
    // own chunk, rank r's at recv[r c]. Nothing goes to or from itself.
    w.send_counts = w.counts;
    w.send_counts[me] = 0;
    w.recv_counts.assign(P, w.counts[me]);
    w.recv_counts[me] = 0;
    buckets_.push_back({off, n, trace::next_id(), blocking ? Stage::summing : Stage::exchanging, c, blocking});
    const Bucket& b = buckets_.back();
    MPI_Request req = MPI_REQUEST_NULL;
    const Stopwatch t;
    if (blocking)
        MPI_CHECK(MPI_Alltoallv(buf_ + off, w.send_counts.data(), w.displs.data(), MPI_UINT16_T, w.recv.data(),
                                w.recv_counts.data(), w.displs.data(), MPI_UINT16_T, comm_));
    else
        MPI_CHECK(MPI_Ialltoallv(buf_ + off, w.send_counts.data(), w.displs.data(), MPI_UINT16_T, w.recv.data(),
                                 w.recv_counts.data(), w.displs.data(), MPI_UINT16_T, comm_, &req));
    cur_.mpi_s += t.seconds();
    trace::async_begin("bucket", b.trace_id, static_cast<std::int64_t>(n * sizeof(bf16)));
    requests_.push_back(req);
    ++cur_.buckets;
    cur_.bytes += n * sizeof(bf16);
}

// This rank's chunk of bucket b: the P ranks' bf16 values added in float in rank order (the
// same bits whichever rank owns the chunk), rounded to bf16 once, in place: the allgather sends
// it from there.
void MpiExchange::sum_owned(const Bucket& b)
{
    const Stopwatch t;
    const std::size_t P = static_cast<std::size_t>(size_), c = b.c, me = static_cast<std::size_t>(rank_);
    const Wire& w = wire_[static_cast<std::size_t>(&b - buckets_.data())];
    bf16* own = buf_ + b.off + me * c;                              // (len) this rank's chunk
    const std::size_t len = static_cast<std::size_t>(w.counts[me]); // <= c
    float acc[kBlock];
    for (std::size_t j0 = 0; j0 < len; j0 += kBlock) {
        const std::size_t m = std::min(kBlock, len - j0);
        for (std::size_t r = 0; r < P; ++r) {
            const bf16* in = (r == me ? own : w.recv.data() + r * c) + j0;
            if (r == 0) {
#pragma omp simd
                for (std::size_t j = 0; j < m; ++j) acc[j] = to_float(in[j]);
            } else {
#pragma omp simd
                for (std::size_t j = 0; j < m; ++j) acc[j] += to_float(in[j]);
            }
        }
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) own[j0 + j] = to_bf16(acc[j]);
    }
    cur_.mpi_s += t.seconds();
}

void MpiExchange::gathered(Bucket& b)
{
    b.stage = Stage::done;
    trace::async_end("bucket", b.trace_id);
    if (done_) done_(b.off, b.n);
}

// Starts the allgathers whose alltoall is done, strictly in bucket order (the same order on
// every rank: see mpi_exchange.hpp); the blocking last range gathers here in its turn.
void MpiExchange::advance_gathers()
{
    while (next_gather_ < buckets_.size() && buckets_[next_gather_].stage == Stage::summing) {
        Bucket& b = buckets_[next_gather_];
        Wire& w = wire_[next_gather_];
        sum_owned(b);
        bf16* bucket = buf_ + b.off; // (n)
        const Stopwatch t;
        if (b.blocking) {
            MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bucket, w.counts.data(), w.displs.data(),
                                     MPI_UINT16_T, gather_comm_));
            cur_.mpi_s += t.seconds();
            gathered(b);
        } else {
            MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bucket, w.counts.data(), w.displs.data(),
                                      MPI_UINT16_T, gather_comm_, &requests_[next_gather_]));
            cur_.mpi_s += t.seconds();
            b.stage = Stage::gathering;
        }
        ++next_gather_;
    }
}

// Bucket `index`'s request finished: its alltoall (its allgather starts in advance_gathers, in
// order) or its allgather.
void MpiExchange::complete(int index)
{
    Bucket& b = buckets_[static_cast<std::size_t>(index)];
    if (b.stage == Stage::exchanging)
        b.stage = Stage::summing;
    else
        gathered(b);
}

void MpiExchange::progress()
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
    advance_gathers();
}

void MpiExchange::wait_all()
{
    for (;;) {
        advance_gathers();
        int index = MPI_UNDEFINED;
        const Stopwatch t;
        MPI_CHECK(MPI_Waitany(static_cast<int>(requests_.size()), requests_.data(), &index, MPI_STATUS_IGNORE));
        cur_.mpi_s += t.seconds();
        if (index == MPI_UNDEFINED) break; // no active request left: every gather started, and done
        complete(index);
    }
}

void MpiExchange::finish()
{
    finish_step(static_cast<std::int64_t>(n_ * sizeof(bf16)), [this] {
        // The last range: a blocking alltoall now, its blocking allgather in its turn (wait_all).
        pending_.drain([this](std::size_t o, std::size_t m) { launch(o, m, true); });
        if (!requests_.empty()) wait_all();
        buckets_.clear();
        requests_.clear();
        next_gather_ = 0;
    });
}

} // namespace ompml
