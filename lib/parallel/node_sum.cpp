// NodeSum<G> (see node_sum.hpp): shared-memory sums of the flat gradient among a node's ranks.
#include "parallel/node_sum.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/node_sync.hpp"
#include "parallel/rank_tree_sum.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>

namespace ompml {

// At the start of each rank's control segment. `published` changes once per layer and is polled
// by the other ranks; `finished` and the hashes change once per step. Rank 0's segment also holds
// the claim slots every rank takes chunks from.
struct NodeSumHeader {
    alignas(64) std::atomic<std::uint64_t> published{0}; // ranges marked since the start
    alignas(64) std::atomic<std::uint64_t> finished{0};  // steps this rank has finished summing
    std::atomic<std::uint64_t> hash[2] = {0, 0};         // ranges of step s, in slot s % 2
};

namespace {

using namespace node_sync;
constexpr std::size_t kControlBytes = kPage + kSlots * sizeof(std::uint64_t); // header page, then claim slots
static_assert(sizeof(NodeSumHeader) <= kPage);

// Sums elements [lo, hi) of the P buffers (G = float, or bf16 with float accumulation) in the
// split-tree order over ranks (rank_tree_sum.hpp; whoever sums: the same bits on every rank), and
// stores the sum into all P, rounded to bf16 once where G is bf16.
template <class G>
void sum_range(G* const* bufs, std::size_t P, std::size_t lo, std::size_t hi)
{
    constexpr std::size_t kBlock = RankTreeSum<G>::kBlock; // elements summed in one pass (stays in L1)
    RankTreeSum<G> tree(P);
    float acc[kBlock];
    G sum[kBlock];
    for (std::size_t i0 = lo; i0 < hi; i0 += kBlock) {
        const std::size_t m = std::min(kBlock, hi - i0);
        tree.block(bufs, i0, m, acc);
        const G* out = sum;
        if constexpr (std::is_same_v<G, float>) {
            out = acc; // nothing to round
        } else {
#pragma omp simd
            for (std::size_t j = 0; j < m; ++j) sum[j] = from_float<G>(acc[j]);
        }
        for (std::size_t q = 0; q < P; ++q) std::copy(out, out + m, bufs[q] + i0);
    }
}

} // namespace

template <class G>
NodeSum<G>::NodeSum(const NodeMemory& mem, std::vector<G*> bufs, std::size_t n)
    : GradientSum<G>(n), mem_(mem), rank_(mem.rank()), bufs_(std::move(bufs))
{
    require(chunks_of(n) < (std::size_t{1} << kCountBits),
            "gradient sum (shared memory): " + std::to_string(n) + " elements is too many");
    control_ = mem_.allocate(kControlBytes); // collective, zeroed
    const std::vector<void*> segments = mem_.peers(control_, kControlBytes);
    for (void* p : segments) headers_.push_back(static_cast<NodeSumHeader*>(p));
    claims_ = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(segments[0]) + kPage);
    new (headers_[static_cast<std::size_t>(rank_)]) NodeSumHeader{};
    if (rank_ == 0)
        for (std::size_t i = 0; i < kSlots; ++i) new (claims_ + i) std::atomic<std::uint64_t>(0);
    MPI_CHECK(MPI_Barrier(mem_.comm())); // every header is set up before anyone reads one
}

template <class G>
NodeSum<G>::~NodeSum()
{
    mem_.deallocate(control_); // collective; not while unwinding from an error (NodeMemory)
}

template <class G>
std::string NodeSum<G>::describe() const
{
    return "shared memory (one node, " + std::to_string(bufs_.size()) + " ranks)" + this->dtype_text;
}

template <class G>
void NodeSum<G>::ready(std::size_t off, std::size_t n)
{
    require(!failed_, "gradient sum (shared memory): unusable after an earlier error");
    require(ranges_.size() < kSlots,
            "gradient sum (shared memory): more than " + std::to_string(kSlots) + " ranges in one step");
    if (!this->mark(off, n)) return;
    const Stopwatch t;
    ranges_.push_back({off, n});
    hash_ = mix(mix(hash_, off), n);
    // Release: the layer's gradient (written by this rank's threads, joined before this call) is
    // visible to a rank that sees the new count.
    headers_[static_cast<std::size_t>(rank_)]->published.store(base_ + ranges_.size(), std::memory_order_release);
    this->cur_.mpi_s += t.seconds();
    ++this->cur_.buckets;
    this->cur_.bytes += n * sizeof(G);
}

template <class G>
std::uint64_t NodeSum<G>::min_published() const
{
    std::uint64_t m = UINT64_MAX;
    for (const NodeSumHeader* h : headers_) m = std::min(m, h->published.load(std::memory_order_acquire));
    return m;
}

template <class G>
bool NodeSum<G>::peer_finished() const
{
    return std::any_of(headers_.begin(), headers_.end(),
                       [&](const NodeSumHeader* h) { return h->finished.load(std::memory_order_acquire) > step_; });
}

template <class G>
void NodeSum<G>::fail(const std::string& what)
{
    // Tell the ranks waiting for this one, so every rank throws instead of waiting forever.
    headers_[static_cast<std::size_t>(rank_)]->finished.store(kFailed, std::memory_order_release);
    failed_ = true;
    throw Error("gradient sum (shared memory): the ranks marked different gradient ranges this step (" + what +
                "): their models or backward passes differ");
}

template <class G>
void NodeSum<G>::sum_chunk(const Range& r, std::size_t chunk)
{
    const std::size_t lo = r.off + chunk * kChunk;
    const std::size_t hi = r.off + std::min(r.n, (chunk + 1) * kChunk);
    sum_range(bufs_.data(), bufs_.size(), lo, hi);
}

template <class G>
void NodeSum<G>::finish()
{
    require(!failed_, "gradient sum (shared memory): unusable after an earlier error");
    this->finish_step(static_cast<std::int64_t>(this->n_ * sizeof(G)), [this] {
        const Stopwatch t;
        sum();
        this->cur_.mpi_s += t.seconds();
    });
}

template <class G>
void NodeSum<G>::sum()
{
    // Sum: take chunks of each range, in order, as soon as every rank has marked it. A rank that
    // got here first sums most of the gradient while the others still run backward.
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
    NodeSumHeader& me = *headers_[static_cast<std::size_t>(rank_)];
    const int slot = static_cast<int>(step_ % 2);
    me.hash[slot].store(hash_, std::memory_order_relaxed);
    me.finished.store(step_ + 1, std::memory_order_release);
    wait_until([&] {
        return std::all_of(headers_.begin(), headers_.end(),
                           [&](const NodeSumHeader* h) { return h->finished.load(std::memory_order_acquire) > step_; });
    });
    bool failed = false, differs = false;
    for (const NodeSumHeader* h : headers_) {
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

template class NodeSum<float>;
template class NodeSum<bf16>;

} // namespace ompml
