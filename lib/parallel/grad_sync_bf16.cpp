// GradientAverager's bf16 exchange (--grad-dtype bf16, MPI transport; grad_sync.hpp says what
// it computes): per bucket an alltoall of bf16 chunks, the owner's fp32 sum in rank order, an
// allgather of the rounded sums, and the conversions between the fp32 gradient and bf16.
#include "parallel/grad_sync.hpp"

#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/mpi_check.hpp"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ompml {
namespace {

constexpr std::size_t kBlock = 2048; // floats accumulated or converted per pass, in L1

} // namespace

// bf16 bucket [off, off + n) (grad_sync.hpp): rank q owns chunk q = [q c, min((q + 1) c, n)).
// The conversions are memory-bound passes over the gradient, so they touch each element as
// few times as possible (measured 2026-11-28, 20M parameters, 2 ranks: converting the whole
// bucket to bf16 and widening all of it back cost 25 ms, more than the 11 ms of the alltoall
// and allgather themselves, and the fp32 transport's whole 30 ms):
//   - only the chunks for the other ranks are rounded to bf16 and sent (MPI_Ialltoallv, no
//     self copy); this rank's own chunk is rounded on the fly inside the sum;
//   - the sum writes its result twice: the bf16 sum for the allgather, and widened straight
//     into this rank's chunk of the gradient; only the other ranks' chunks are widened later;
//   - the stores that stream a large array through (bf16 out, floats back) are non-temporal
//     (stream_copy).
// Even so, on one node (the "wire" is memory too) the bf16 sum costs about what the fp32 one
// does: 20M parameters, 2 ranks: conversions and sum ~20 ms + MPI 8-15 ms against ~30 ms for
// fp32 (docs/results/precision.md). It pays where the bytes cross a slower network.
namespace {

// Copies `bytes` with non-temporal (streaming) stores where the CPU has them: the arrays are far
// larger than the caches, so the usual read-for-ownership of every destination line only adds
// traffic (measured: widening 20M bf16 to float took 10.3 ms with plain stores, 5.3 ms
// streamed). The conversions themselves stay plain, portable loops into a small block that
// stays in L1. Ends with a fence: another process may read dst next (MPI).
void stream_copy(void* dst, const void* src, std::size_t bytes)
{
    auto* d = static_cast<char*>(dst);
    const auto* s = static_cast<const char*>(src);
#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__AVX512F__)
    constexpr std::size_t V = 64;
#else
    constexpr std::size_t V = 32;
#endif
    const std::size_t head = std::min(bytes, (V - reinterpret_cast<std::uintptr_t>(d) % V) % V);
    std::memcpy(d, s, head);
    std::size_t i = head;
    for (; i + V <= bytes; i += V) {
#if defined(__AVX512F__)
        _mm512_stream_si512(reinterpret_cast<__m512i*>(d + i), _mm512_loadu_si512(s + i));
#else
        _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
#endif
    }
    std::memcpy(d + i, s + i, bytes - i);
    _mm_sfence();
#else
    std::memcpy(d, s, bytes);
#endif
}

// dst[i] = src[i] converted (float -> bf16 rounds, bf16 -> float widens) for i < m, through a
// block in L1 and streamed out.
template <class To, class From>
void convert_stream(To* dst, const From* src, std::size_t m)
{
#pragma omp parallel for schedule(static) if (m > 65536)
    for (std::size_t i0 = 0; i0 < m; i0 += kBlock) {
        const std::size_t k = std::min(kBlock, m - i0);
        To block[kBlock];
#pragma omp simd
        for (std::size_t j = 0; j < k; ++j) block[j] = from_float<To>(to_float(src[i0 + j]));
        stream_copy(dst + i0, block, k * sizeof(To));
    }
}

// dst[i] = bf16(src[i]) for i < m, zeros to c (padding of the last chunk).
void pack(bf16* dst, const float* src, std::size_t m, std::size_t c)
{
    convert_stream(dst, src, m);
    std::fill(dst + m, dst + c, bf16{0});
}

} // namespace

void GradientAverager::launch_bf16(std::size_t off, std::size_t n, bool blocking)
{
    const trace::Span span("grad bucket", trace::host, -1, static_cast<std::int64_t>(n * sizeof(bf16)));
    const std::size_t P = static_cast<std::size_t>(size_), c = (n + P - 1) / P;
    const std::size_t me = static_cast<std::size_t>(rank_);
    const std::size_t k = buckets_.size();
    if (wire_.size() <= k) wire_.resize(k + 1); // moves the inner vectors: their data stays put
    Wire& w = wire_[k];
    if (w.buf.size() < 2 * P * c) w.buf = std::vector<bf16>(2 * P * c);
    w.counts.assign(P, static_cast<int>(c));
    w.counts[me] = 0; // this rank's own chunk stays here
    w.displs.resize(P);
    for (std::size_t q = 0; q < P; ++q) w.displs[q] = static_cast<int>(q * c);
    bf16* send = w.buf.data(); // (P, c): chunk q goes to rank q; later the gathered sums
    bf16* recv = send + P * c; // (P, c): rank r's values of this rank's chunk
    Stopwatch copy;
    const float* src = grad_ + off; // (n) host
    if (!direct_) {
        mem_.to_host(host_ + off, grad_ + off, n * sizeof(float));
        src = host_ + off;
    }
    for (std::size_t q = 0; q < P; ++q)
        if (q != me) pack(send + q * c, src + std::min(n, q * c), std::min(n, (q + 1) * c) - std::min(n, q * c), c);
    cur_.copy_s += copy.seconds();
    MPI_Request req = MPI_REQUEST_NULL;
    const Stopwatch t;
    if (blocking)
        MPI_CHECK(MPI_Alltoallv(send, w.counts.data(), w.displs.data(), MPI_UINT16_T, recv, w.counts.data(),
                                w.displs.data(), MPI_UINT16_T, comm_));
    else
        MPI_CHECK(MPI_Ialltoallv(send, w.counts.data(), w.displs.data(), MPI_UINT16_T, recv, w.counts.data(),
                                 w.displs.data(), MPI_UINT16_T, comm_, &req));
    cur_.mpi_s += t.seconds();
    buckets_.push_back({off, n, trace::next_id(), blocking ? Stage::summing : Stage::exchanging, c, blocking});
    trace::async_begin("bucket", buckets_.back().trace_id, static_cast<std::int64_t>(n * sizeof(bf16)));
    requests_.push_back(req);
    ++cur_.buckets;
    cur_.bytes += n * sizeof(bf16);
}

// This rank's chunk of bucket b: the P ranks' bf16 values (its own rounded here) added in float
// in rank order, rounded to bf16 once; stored at this rank's place in the send buffer (which the
// allgather fills in) and, widened, into the gradient.
void GradientAverager::sum_owned(Bucket& b)
{
    const Stopwatch t;
    const std::size_t P = static_cast<std::size_t>(size_), c = b.c, me = static_cast<std::size_t>(rank_);
    bf16* send = wire_[static_cast<std::size_t>(&b - buckets_.data())].buf.data();
    const bf16* recv = send + P * c;                                              // (P, c)
    bf16* sums = send + me * c;                                                   // (c)
    float* g = (direct_ ? grad_ : host_) + b.off + std::min(b.n, me * c);         // this rank's chunk
    const std::size_t mine = std::min(b.n, (me + 1) * c) - std::min(b.n, me * c); // its length (<= c)
    float acc[kBlock];
    for (std::size_t j0 = 0; j0 < c; j0 += kBlock) {
        const std::size_t m = std::min(kBlock, c - j0);
        const std::size_t real = j0 < mine ? std::min(m, mine - j0) : 0; // the rest is padding
        for (std::size_t r = 0; r < P; ++r) { // rank order: the same bits whichever rank owns the chunk
            if (r == me) {
                const float* in = g + j0;
                if (r == 0) {
#pragma omp simd
                    for (std::size_t j = 0; j < real; ++j) acc[j] = to_float(to_bf16(in[j]));
                    std::fill(acc + real, acc + m, 0.0f);
                } else {
#pragma omp simd
                    for (std::size_t j = 0; j < real; ++j) acc[j] += to_float(to_bf16(in[j]));
                }
                continue;
            }
            const bf16* in = recv + r * c + j0;
            if (r == 0) {
#pragma omp simd
                for (std::size_t j = 0; j < m; ++j) acc[j] = to_float(in[j]);
            } else {
#pragma omp simd
                for (std::size_t j = 0; j < m; ++j) acc[j] += to_float(in[j]);
            }
        }
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) {
            const bf16 s = to_bf16(acc[j]);
            sums[j0 + j] = s;
            acc[j] = to_float(s);
        }
        stream_copy(g + j0, acc, real * sizeof(float));
    }
    cur_.mpi_s += t.seconds();
}

// The other ranks' chunks of the gathered sums, widened into the gradient (this rank's own
// chunk was written by sum_owned); then the whole bucket back to the device when staged.
void GradientAverager::unpack(const Bucket& b)
{
    Stopwatch copy;
    const bf16* sums = wire_[static_cast<std::size_t>(&b - buckets_.data())].buf.data(); // (n) gathered
    float* dst = (direct_ ? grad_ : host_) + b.off;                                      // (n) host
    const std::size_t n = b.n, c = b.c, me = static_cast<std::size_t>(rank_);
    for (std::size_t q = 0; q < static_cast<std::size_t>(size_); ++q) {
        const std::size_t lo = std::min(n, q * c), hi = std::min(n, (q + 1) * c);
        if (q != me) convert_stream(dst + lo, sums + lo, hi - lo);
    }
    if (!direct_) mem_.to_device(grad_ + b.off, host_ + b.off, n * sizeof(float));
    cur_.copy_s += copy.seconds();
}

// Starts the allgathers whose alltoall is done, strictly in bucket order (the same order on
// every rank: see grad_sync.hpp); the blocking last range gathers here in its turn.
void GradientAverager::advance_gathers()
{
    while (next_gather_ < buckets_.size() && buckets_[next_gather_].stage == Stage::summing) {
        Bucket& b = buckets_[next_gather_];
        sum_owned(b);
        bf16* gathered = wire_[next_gather_].buf.data();
        const Stopwatch t;
        if (b.blocking) {
            MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered, static_cast<int>(b.c), MPI_UINT16_T,
                                    gather_comm_));
            cur_.mpi_s += t.seconds();
            b.stage = Stage::done;
            trace::async_end("bucket", b.trace_id);
            unpack(b);
        } else {
            MPI_CHECK(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered, static_cast<int>(b.c), MPI_UINT16_T,
                                     gather_comm_, &requests_[next_gather_]));
            cur_.mpi_s += t.seconds();
            b.stage = Stage::gathering;
        }
        ++next_gather_;
    }
}

} // namespace ompml
