// NodeSum (see node_sum.hpp): shared-memory sums of the flat gradient among a node's ranks.
#include "parallel/node_sum.hpp"

#include "core/check.hpp"
#include "parallel/mpi_check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <thread>

namespace ompml {

// At the start of each rank's window segment. `published` changes once per layer and is
// polled by the other ranks; `finished` and the hashes change once per step. Rank 0's segment
// also holds the claim slots every rank takes chunks from.
struct NodeSum::Header {
    alignas(64) std::atomic<std::uint64_t> published{0}; // ranges marked since the start
    alignas(64) std::atomic<std::uint64_t> finished{0};  // steps this rank has finished summing
    std::atomic<std::uint64_t> hash[2] = {0, 0};         // ranges of step s, in slot s % 2
};

namespace {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "NodeSum's counters must be lock-free atomics to work between processes");
constexpr std::size_t kPage = 4096;
constexpr std::size_t kSlots = 4096;                                         // most ranges one step may mark
constexpr std::size_t kHeaderBytes = kPage + kSlots * sizeof(std::uint64_t); // page-aligned buffers after it
constexpr std::size_t kChunk = 32768;                                        // floats per claim (128 KB of each buffer)
constexpr std::size_t kBlock = 2048;          // floats summed in one pass over the P buffers (8 KB, stays in L1)
constexpr int kCountBits = 24;                // a claim slot: (range number + 1) << 24 | chunks claimed
constexpr std::uint64_t kFailed = UINT64_MAX; // `finished` of a rank that found the ranges differ

// Spin briefly (the other rank is usually a few microseconds away), then yield, then nap, so
// an oversubscribed rank hands its core to the rank it waits for.
template <class Done>
void wait_until(Done done)
{
    for (int i = 0; !done(); ++i) {
        if (i < 256) {
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        } else if (i < 4096) {
            std::this_thread::yield();
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) { return (h ^ v) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull; }

std::size_t chunks_of(std::size_t n) { return std::max<std::size_t>(1, (n + kChunk - 1) / kChunk); }

// The next unclaimed chunk of range number g (of `chunks`), or none when all are taken. A slot
// still tagged with an earlier range (every rank has finished that step) starts afresh.
std::optional<std::size_t> claim(std::atomic<std::uint64_t>& slot, std::uint64_t g, std::size_t chunks)
{
    const std::uint64_t tag = (g + 1) << kCountBits;
    std::uint64_t v = slot.load(std::memory_order_relaxed);
    for (;;) {
        const bool fresh = (v >> kCountBits) != g + 1;
        const std::uint64_t taken = fresh ? 0 : v & ((std::uint64_t{1} << kCountBits) - 1);
        if (taken >= chunks) return std::nullopt;
        if (slot.compare_exchange_weak(v, tag | (taken + 1), std::memory_order_relaxed)) return taken;
    }
}

} // namespace

bool NodeSum::possible(MPI_Comm comm)
{
    MPI_Comm node = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int node_size = 0, size = 0;
    MPI_CHECK(MPI_Comm_size(node, &node_size));
    MPI_CHECK(MPI_Comm_size(comm, &size));
    MPI_CHECK(MPI_Comm_free(&node));
    int all_here = node_size == size ? 1 : 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all_here, 1, MPI_INT, MPI_LAND, comm));
    return all_here != 0;
}

NodeSum::NodeSum(MPI_Comm comm, std::size_t n, Precision dtype) : comm_(comm), n_(n), dtype_(dtype)
{
    static_assert(sizeof(Header) <= kPage);
    require(chunks_of(n) < (std::size_t{1} << kCountBits), "NodeSum: " + std::to_string(n) + " floats is too many");
    require(possible(comm), "NodeSum: the ranks of this communicator are not all on one node");
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    MPI_Info info = MPI_INFO_NULL;
    MPI_CHECK(MPI_Info_create(&info));
    MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true")); // each segment on its owner's pages
    const std::size_t elem = dtype_ == Precision::bf16 ? sizeof(bf16) : sizeof(float);
    const std::size_t bytes = kHeaderBytes + (n_ * elem + kPage - 1) / kPage * kPage;
    void* base = nullptr;
    const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(bytes), 1, info, comm_, &base, &win_);
    const int free_rc = MPI_Info_free(&info); // freed whatever the allocation returned
    MPI_CHECK(rc);
    MPI_CHECK(free_rc);
    for (int q = 0; q < size_; ++q) {
        MPI_Aint seg = 0;
        int disp = 0;
        void* p = nullptr;
        MPI_CHECK(MPI_Win_shared_query(win_, q, &seg, &disp, &p));
        headers_.push_back(static_cast<Header*>(p));
        if (dtype_ == Precision::bf16)
            bufs16_.push_back(reinterpret_cast<bf16*>(static_cast<char*>(p) + kHeaderBytes));
        else
            bufs_.push_back(reinterpret_cast<float*>(static_cast<char*>(p) + kHeaderBytes));
        if (q == 0) claims_ = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(p) + kPage);
    }
    new (headers_[static_cast<std::size_t>(rank_)]) Header{};
    if (rank_ == 0)
        for (std::size_t i = 0; i < kSlots; ++i) new (claims_ + i) std::atomic<std::uint64_t>(0);
    if (dtype_ == Precision::bf16)
        std::fill(data16(), data16() + n_, bf16{0});
    else
        std::fill(data(), data() + n_, 0.0f);
    MPI_CHECK(MPI_Barrier(comm_)); // every header is set up before anyone reads one
}

NodeSum::~NodeSum()
{
    // Unwinding from an error: the other ranks may never reach MPI_Win_free; the job is ending.
    if (win_ != MPI_WIN_NULL && std::uncaught_exceptions() == 0) MPI_CHECK(MPI_Win_free(&win_));
}

void NodeSum::ready(std::size_t off, std::size_t count)
{
    require(!failed_, "gradient sum (shared memory): unusable after an earlier error");
    require(off <= n_ && count <= n_ - off,
            "NodeSum::ready: range [" + std::to_string(off) + ", " + std::to_string(off + count) +
                ") exceeds the buffer's " + std::to_string(n_) + " elements");
    require(ranges_.size() < kSlots, "NodeSum::ready: more than " + std::to_string(kSlots) + " ranges in one step");
    ranges_.push_back({off, count});
    hash_ = mix(mix(hash_, off), count);
    // Release: the layer's gradient (written by this rank's threads, joined before this call)
    // is visible to a rank that sees the new count.
    headers_[static_cast<std::size_t>(rank_)]->published.store(base_ + ranges_.size(), std::memory_order_release);
}

std::uint64_t NodeSum::min_published() const
{
    std::uint64_t m = UINT64_MAX;
    for (const Header* h : headers_) m = std::min(m, h->published.load(std::memory_order_acquire));
    return m;
}

bool NodeSum::peer_finished() const
{
    return std::any_of(headers_.begin(), headers_.end(),
                       [&](const Header* h) { return h->finished.load(std::memory_order_acquire) > step_; });
}

void NodeSum::fail(const std::string& what)
{
    // Tell the ranks waiting for this one, so every rank throws instead of waiting forever.
    headers_[static_cast<std::size_t>(rank_)]->finished.store(kFailed, std::memory_order_release);
    failed_ = true;
    throw Error("gradient sum (shared memory): the ranks marked different gradient ranges this step (" + what +
                "): their models or backward passes differ");
}

namespace {

// Sums elements [lo, hi) of the P buffers (T = float, or bf16 with float accumulation), in
// rank order 0..P-1 whoever sums (the same bits on every rank), and stores the sum into all P.
template <class T>
void sum_range(T* const* bufs, std::size_t P, std::size_t lo, std::size_t hi)
{
    float acc[kBlock];
    T sum[kBlock];
    for (std::size_t i0 = lo; i0 < hi; i0 += kBlock) {
        const std::size_t m = std::min(kBlock, hi - i0);
        const T* first = bufs[0] + i0;
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) acc[j] = to_float(first[j]);
        for (std::size_t q = 1; q < P; ++q) {
            const T* src = bufs[q] + i0;
#pragma omp simd
            for (std::size_t j = 0; j < m; ++j) acc[j] += to_float(src[j]);
        }
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) sum[j] = from_float<T>(acc[j]);
        for (std::size_t q = 0; q < P; ++q) std::copy(sum, sum + m, bufs[q] + i0);
    }
}

} // namespace

void NodeSum::sum_chunk(const Range& r, std::size_t chunk)
{
    const std::size_t lo = r.off + chunk * kChunk;
    const std::size_t hi = r.off + std::min(r.n, (chunk + 1) * kChunk);
    if (dtype_ == Precision::bf16)
        sum_range(bufs16_.data(), bufs16_.size(), lo, hi);
    else
        sum_range(bufs_.data(), bufs_.size(), lo, hi);
}

void NodeSum::finish()
{
    require(!failed_, "gradient sum (shared memory): unusable after an earlier error");
    // Sum: take chunks of each range, in order, as soon as every rank has marked it. A rank
    // that got here first sums most of the gradient while the others still run backward.
    for (std::size_t k = 0; k < ranges_.size(); ++k) {
        const std::uint64_t need = base_ + k + 1; // every rank has marked range k
        if (min_published() < need) {
            // A rank that finished this step without marking range k marked fewer ranges.
            wait_until([&] { return min_published() >= need || peer_finished(); });
            if (min_published() < need) fail("a rank finished without marking range " + std::to_string(k + 1));
        }
        const Range r = ranges_[k];
        const std::size_t chunks = chunks_of(r.n);
        std::atomic<std::uint64_t>& slot = claims_[(base_ + k) % kSlots];
#pragma omp parallel if (chunks > 1)
        for (std::optional<std::size_t> c; (c = claim(slot, base_ + k, chunks));) sum_chunk(r, *c);
    }
    // Finished: every chunk this rank claimed is stored. When all ranks have finished, every
    // chunk is (all were claimed before the last rank left the loop above).
    Header& me = *headers_[static_cast<std::size_t>(rank_)];
    const int slot = static_cast<int>(step_ % 2);
    me.hash[slot].store(hash_, std::memory_order_relaxed);
    me.finished.store(step_ + 1, std::memory_order_release);
    wait_until([&] {
        return std::all_of(headers_.begin(), headers_.end(),
                           [&](const Header* h) { return h->finished.load(std::memory_order_acquire) > step_; });
    });
    bool failed = false, differs = false;
    for (const Header* h : headers_) {
        failed = failed || h->finished.load(std::memory_order_acquire) == kFailed;
        differs = differs || h->hash[slot].load(std::memory_order_relaxed) != hash_;
    }
    base_ += ranges_.size();
    ranges_.clear();
    hash_ = 0;
    ++step_;
    if (failed) fail("another rank found the mismatch");
    if (differs) fail("offsets or sizes differ");
}

} // namespace ompml
