// MpiExchange<G> (see mpi_exchange.hpp): per bucket an alltoall of chunks, the owner's float sum
// in split-tree order over ranks, an allgather of the sums. MPI sends straight from the buffer and
// gathers straight into it: nothing here converts or copies a whole bucket.
#include "parallel/mpi_exchange.hpp"

#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/rank_tree_sum.hpp"

#include <algorithm>
#include <exception>
#include <type_traits>

namespace ompml {
namespace {

// The wire type: bf16 travels as its 16 bits (MPI only moves it; the sums are ompml's).
template <class G>
MPI_Datatype wire_type()
{
    return std::is_same_v<G, float> ? MPI_FLOAT : MPI_UINT16_T;
}

} // namespace

template <class G>
MpiExchange<G>::MpiExchange(MPI_Comm comm, G* buf, std::size_t n, double bucket_mb, BucketDone done)
    : GradientSum<G>(n), comm_(comm), buf_(buf), done_(std::move(done)), pending_(bucket_mb)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    MPI_CHECK(MPI_Comm_dup(comm_, &gather_comm_));
    sources_.resize(static_cast<std::size_t>(size_));
}

template <class G>
MpiExchange<G>::~MpiExchange()
{
    // Unwinding from an error on this rank: the other ranks may never join these collectives, so
    // neither wait nor free the communicator; the job is ending.
    if (std::uncaught_exceptions() > 0) return;
    const bool in_flight =
        std::any_of(requests_.begin(), requests_.end(), [](MPI_Request r) { return r != MPI_REQUEST_NULL; });
    if (in_flight) MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    MPI_CHECK(MPI_Comm_free(&gather_comm_));
}

template <class G>
std::string MpiExchange<G>::describe() const
{
    return std::string(kName) + ", on host memory" + this->dtype_text;
}

template <class G>
void MpiExchange<G>::ready(std::size_t off, std::size_t n)
{
    if (!this->mark(off, n)) return;
    pending_.add(off, n, [this](std::size_t o, std::size_t m) { launch(o, m, false); });
    progress();
}

// Bucket [off, off + n): rank q owns chunk q = [q c, min((q + 1) c, n)).
template <class G>
void MpiExchange<G>::launch(std::size_t off, std::size_t n, bool blocking)
{
    const trace::Span span("grad bucket", trace::host, -1, static_cast<std::int64_t>(n * sizeof(G)));
    const std::size_t P = static_cast<std::size_t>(size_), c = (n + P - 1) / P;
    const std::size_t me = static_cast<std::size_t>(rank_);
    const std::size_t k = buckets_.size();
    if (wire_.size() <= k) wire_.resize(k + 1); // moves the inner vectors: their data stays put
    Wire& w = wire_[k];
    if (w.recv.size() < P * c) w.recv = std::vector<G>(P * c);
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
    const MPI_Datatype type = wire_type<G>();
    MPI_Request req = MPI_REQUEST_NULL;
    const Stopwatch t;
    if (blocking)
        MPI_CHECK(MPI_Alltoallv(buf_ + off, w.send_counts.data(), w.displs.data(), type, w.recv.data(),
                                w.recv_counts.data(), w.displs.data(), type, comm_));
    else
        MPI_CHECK(MPI_Ialltoallv(buf_ + off, w.send_counts.data(), w.displs.data(), type, w.recv.data(),
                                 w.recv_counts.data(), w.displs.data(), type, comm_, &req));
    this->cur_.mpi_s += t.seconds();
    trace::async_begin("bucket", b.trace_id, static_cast<std::int64_t>(n * sizeof(G)));
    requests_.push_back(req);
    ++this->cur_.buckets;
    this->cur_.bytes += n * sizeof(G);
}

// This rank's chunk of bucket b: the P ranks' values added in float in split-tree order over rank
// index (the same bits whichever rank owns the chunk), rounded to bf16 once where G is bf16, in
// place: the allgather sends it from there.
template <class G>
void MpiExchange<G>::sum_owned(const Bucket& b)
{
    const Stopwatch t;
    constexpr std::size_t kBlock = RankTreeSum<G>::kBlock;
    const std::size_t P = static_cast<std::size_t>(size_), c = b.c, me = static_cast<std::size_t>(rank_);
    const Wire& w = wire_[static_cast<std::size_t>(&b - buckets_.data())];
    G* own = buf_ + b.off + me * c;                                 // (len) this rank's chunk
    const std::size_t len = static_cast<std::size_t>(w.counts[me]); // <= c
    for (std::size_t r = 0; r < P; ++r) sources_[r] = r == me ? own : w.recv.data() + r * c;
    RankTreeSum<G> tree(P);
    float acc[kBlock];
    for (std::size_t j0 = 0; j0 < len; j0 += kBlock) {
        const std::size_t m = std::min(kBlock, len - j0);
        tree.block(sources_.data(), j0, m, acc);
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) own[j0 + j] = from_float<G>(acc[j]);
    }
    this->cur_.mpi_s += t.seconds();
}

template <class G>
void MpiExchange<G>::gathered(Bucket& b)
{
    b.stage = Stage::done;
    trace::async_end("bucket", b.trace_id);
    if (done_) done_(b.off, b.n);
}

// Starts the allgathers whose alltoall is done, strictly in bucket order (the same order on
// every rank: see mpi_exchange.hpp); the blocking last range gathers here in its turn.
template <class G>
void MpiExchange<G>::advance_gathers()
{
    while (next_gather_ < buckets_.size() && buckets_[next_gather_].stage == Stage::summing) {
        Bucket& b = buckets_[next_gather_];
        Wire& w = wire_[next_gather_];
        sum_owned(b);
        G* bucket = buf_ + b.off; // (n)
        const Stopwatch t;
        if (b.blocking) {
            MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bucket, w.counts.data(), w.displs.data(),
                                     wire_type<G>(), gather_comm_));
            this->cur_.mpi_s += t.seconds();
            gathered(b);
        } else {
            MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bucket, w.counts.data(), w.displs.data(),
                                      wire_type<G>(), gather_comm_, &requests_[next_gather_]));
            this->cur_.mpi_s += t.seconds();
            b.stage = Stage::gathering;
        }
        ++next_gather_;
    }
}

// Bucket `index`'s request finished: its alltoall (its allgather starts in advance_gathers, in
// order) or its allgather.
template <class G>
void MpiExchange<G>::complete(int index)
{
    Bucket& b = buckets_[static_cast<std::size_t>(index)];
    if (b.stage == Stage::exchanging)
        b.stage = Stage::summing;
    else
        gathered(b);
}

template <class G>
void MpiExchange<G>::progress()
{
    if (requests_.empty()) return;
    std::vector<int> done(requests_.size());
    int count = 0;
    const Stopwatch t;
    MPI_CHECK(
        MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &count, done.data(), MPI_STATUSES_IGNORE));
    this->cur_.mpi_s += t.seconds();
    if (count != MPI_UNDEFINED) // else every request had already finished
        for (int i = 0; i < count; ++i) complete(done[static_cast<std::size_t>(i)]);
    advance_gathers();
}

template <class G>
void MpiExchange<G>::wait_all()
{
    for (;;) {
        advance_gathers();
        int index = MPI_UNDEFINED;
        const Stopwatch t;
        MPI_CHECK(MPI_Waitany(static_cast<int>(requests_.size()), requests_.data(), &index, MPI_STATUS_IGNORE));
        this->cur_.mpi_s += t.seconds();
        if (index == MPI_UNDEFINED) break; // no active request left: every gather started, and done
        complete(index);
    }
}

template <class G>
void MpiExchange<G>::finish()
{
    this->finish_step(static_cast<std::int64_t>(this->n_ * sizeof(G)), [this] {
        // The last range: a blocking alltoall now, its blocking allgather in its turn (wait_all).
        pending_.drain([this](std::size_t o, std::size_t m) { launch(o, m, true); });
        if (!requests_.empty()) wait_all();
        buckets_.clear();
        requests_.clear();
        next_gather_ = 0;
    });
}

template class MpiExchange<float>;
template class MpiExchange<bf16>;

} // namespace ompml
