// GradientAverager's bf16 exchange (--grad-dtype bf16, MPI transport; grad_sync.hpp says what
// it computes): per bucket an alltoall of bf16 chunks, the owner's fp32 sum in rank order, an
// allgather of the rounded sums. Backward wrote the bf16 gradient itself (the dW gemm's
// epilogue) and the optimizer reads the bf16 sum, so nothing here converts a whole bucket: MPI
// sends straight from the bf16 gradient and gathers straight into it, and the one pass over
// memory is the owner's sum (reads P chunks, writes one).
//
// Why the gradient is bf16 end to end (measured 2026-11-28, 20M parameters, 2 ranks, one node,
// where the "wire" is memory too): with the fp32 gradient rounded here before sending and
// widened after gathering, the conversions cost 20-25 ms per step, more than the 11 ms of the
// alltoall and allgather and about the fp32 allreduce's whole 30 ms, so the bf16 sum saved
// nothing (docs/results/precision.md).
#include "parallel/grad_sync.hpp"

#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ompml {
namespace {

constexpr std::size_t kBlock = 2048; // elements accumulated per pass, in L1

} // namespace

// The bucket's bf16 values as MPI reads and writes them: the gradient itself, or its staging copy.
bf16* GradientAverager::wire_data(const Bucket& b) { return (direct_ ? grad16_ : host16_) + b.off; }

// bf16 bucket [off, off + n) (grad_sync.hpp): rank q owns chunk q = [q c, min((q + 1) c, n)).
void GradientAverager::launch_bf16(std::size_t off, std::size_t n, bool blocking)
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
    if (!direct_) {
        const Stopwatch copy;
        mem_.to_host(host16_ + off, grad16_ + off, n * sizeof(bf16));
        cur_.copy_s += copy.seconds();
    }
    bf16* buf = wire_data(b); // (n)
    MPI_Request req = MPI_REQUEST_NULL;
    const Stopwatch t;
    if (blocking)
        MPI_CHECK(MPI_Alltoallv(buf, w.send_counts.data(), w.displs.data(), MPI_UINT16_T, w.recv.data(),
                                w.recv_counts.data(), w.displs.data(), MPI_UINT16_T, comm_));
    else
        MPI_CHECK(MPI_Ialltoallv(buf, w.send_counts.data(), w.displs.data(), MPI_UINT16_T, w.recv.data(),
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
void GradientAverager::sum_owned(const Bucket& b)
{
    const Stopwatch t;
    const std::size_t P = static_cast<std::size_t>(size_), c = b.c, me = static_cast<std::size_t>(rank_);
    const Wire& w = wire_[static_cast<std::size_t>(&b - buckets_.data())];
    bf16* own = wire_data(b) + me * c;                              // (len) this rank's chunk
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

// Bucket b is summed on every rank: back to the device when staged.
void GradientAverager::gathered(Bucket& b)
{
    b.stage = Stage::done;
    trace::async_end("bucket", b.trace_id);
    if (direct_) return;
    const Stopwatch copy;
    mem_.to_device(grad16_ + b.off, host16_ + b.off, b.n * sizeof(bf16));
    cur_.copy_s += copy.seconds();
}

// Starts the allgathers whose alltoall is done, strictly in bucket order (the same order on
// every rank: see grad_sync.hpp); the blocking last range gathers here in its turn.
void GradientAverager::advance_gathers()
{
    while (next_gather_ < buckets_.size() && buckets_[next_gather_].stage == Stage::summing) {
        Bucket& b = buckets_[next_gather_];
        Wire& w = wire_[next_gather_];
        sum_owned(b);
        bf16* buf = wire_data(b);
        const Stopwatch t;
        if (b.blocking) {
            MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, w.counts.data(), w.displs.data(),
                                     MPI_UINT16_T, gather_comm_));
            cur_.mpi_s += t.seconds();
            gathered(b);
        } else {
            MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, w.counts.data(), w.displs.data(),
                                      MPI_UINT16_T, gather_comm_, &requests_[next_gather_]));
            cur_.mpi_s += t.seconds();
            b.stage = Stage::gathering;
        }
        ++next_gather_;
    }
}

} // namespace ompml
