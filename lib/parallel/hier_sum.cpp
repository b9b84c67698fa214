// HierSum<G> (see hier_sum.hpp): the node's ranks sum through shared memory, the node leaders
// between nodes through MPI, and every rank takes the result from its node's partial sum.
#include "parallel/hier_sum.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"
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
#include <utility>

namespace ompml {

// At the start of each rank's control segment. `published` changes once per layer and is polled
// by the node's other ranks; the rest once per step. Local rank 0's segment also holds the claim
// and store slots of the ranges.
struct HierSumHeader {
    alignas(64) std::atomic<std::uint64_t> published{0}; // ranges marked since the start
    alignas(64) std::atomic<std::uint64_t> closed{0};    // steps whose ranges this rank has all marked
    alignas(64) std::atomic<std::uint64_t> finished{0};  // steps this rank has finished (result taken)
    std::atomic<std::uint64_t> hash[2] = {0, 0};         // ranges of step s, in slot s % 2
    alignas(64) std::atomic<std::uint64_t> summed{0};    // leader: steps whose sum over nodes is in the partial sum
};

namespace {

using namespace node_sync;
// header page, then the claim slots and the store slots
constexpr std::size_t kControlBytes = kPage + 2 * kSlots * sizeof(std::uint64_t);
static_assert(sizeof(HierSumHeader) <= kPage);

// The node's sum of elements [lo, hi): the L buffers added in float in the split-tree order over
// local rank (rank_tree_sum.hpp), stored as float into out (which may be bufs[0] itself: each
// block is read whole before it is written).
template <class G>
void node_range(G* const* bufs, std::size_t L, float* out, std::size_t lo, std::size_t hi)
{
    constexpr std::size_t kBlock = RankTreeSum<G>::kBlock;
    RankTreeSum<G> tree(L);
    float acc[kBlock];
    for (std::size_t i0 = lo; i0 < hi; i0 += kBlock) {
        const std::size_t m = std::min(kBlock, hi - i0);
        tree.block(bufs, i0, m, acc);
        std::copy(acc, acc + m, out + i0);
    }
}

} // namespace

template <class G>
HierSum<G>::HierSum(const NodeMemory& mem, std::vector<G*> bufs, std::size_t n, int nodes, std::string inter_name,
                    const MakeInter& make_inter)
    : GradientSum<G>(n), mem_(mem), rank_(mem.rank()), nodes_(nodes), bufs_(std::move(bufs)),
      inter_name_(std::move(inter_name))
{
    require(chunks_of(n) < (std::size_t{1} << kCountBits),
            "gradient sum (hierarchical): " + std::to_string(n) + " elements is too many");
    // The partial sum: the leader's own gradient where it is float, else a float buffer of the
    // window's (collective; the leader's segment is the one used).
    if constexpr (std::is_same_v<G, float>) {
        partial_ = bufs_[0];
    } else {
        partial_alloc_ = mem_.allocate(n * sizeof(float));
        partial_ = static_cast<float*>(mem_.peers(partial_alloc_, n * sizeof(float))[0]);
    }
    control_ = mem_.allocate(kControlBytes); // collective, zeroed
    const std::vector<void*> segments = mem_.peers(control_, kControlBytes);
    for (void* p : segments) headers_.push_back(static_cast<HierSumHeader*>(p));
    claims_ = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(segments[0]) + kPage);
    stored_ = claims_ + kSlots;
    new (headers_[static_cast<std::size_t>(rank_)]) HierSumHeader{};
    if (rank_ == 0)
        for (std::size_t i = 0; i < 2 * kSlots; ++i) new (claims_ + i) std::atomic<std::uint64_t>(0);
    MPI_CHECK(MPI_Barrier(mem_.comm()));           // every header is set up before anyone reads one
    if (rank_ == 0) inter_ = make_inter(partial_); // collective over the leaders
}

template <class G>
HierSum<G>::~HierSum()
{
    inter_.reset();
    mem_.deallocate(control_); // collective; not while unwinding from an error (NodeMemory)
    if (partial_alloc_ != nullptr) mem_.deallocate(partial_alloc_);
}

template <class G>
std::string HierSum<G>::describe() const
{
    std::string s = "hierarchical: shared memory in each node (" + std::to_string(bufs_.size()) + " ranks here), " +
        inter_name_ + " between " + std::to_string(nodes_) + " node leaders";
    if constexpr (std::is_same_v<G, bf16>) s += ", bf16 gradient, fp32 sums and fp32 between nodes";
    return s;
}

template <class G>
std::uint64_t HierSum<G>::min_published() const
{
    std::uint64_t m = UINT64_MAX;
    for (const HierSumHeader* h : headers_) m = std::min(m, h->published.load(std::memory_order_acquire));
    return m;
}

template <class G>
bool HierSum<G>::short_closed(std::uint64_t need) const
{
    // Acquire `closed`, then read `published`: a rank publishes all its ranges before it closes.
    return std::any_of(headers_.begin(), headers_.end(), [&](const HierSumHeader* h) {
        return h->closed.load(std::memory_order_acquire) > step_ && h->published.load(std::memory_order_acquire) < need;
    });
}

template <class G>
bool HierSum<G>::peer_failed() const
{
    return std::any_of(headers_.begin(), headers_.end(),
                       [](const HierSumHeader* h) { return h->finished.load(std::memory_order_acquire) == kFailed; });
}

template <class G>
void HierSum<G>::fail(const std::string& what)
{
    // Tell the ranks waiting for this one, so every rank of the node throws instead of waiting.
    headers_[static_cast<std::size_t>(rank_)]->finished.store(kFailed, std::memory_order_release);
    failed_ = true;
    throw Error("gradient sum (hierarchical): the ranks of a node marked different gradient ranges this step (" + what +
                "): their models or backward passes differ");
}

template <class G>
void HierSum<G>::ready(std::size_t off, std::size_t n)
{
    require(!failed_, "gradient sum (hierarchical): unusable after an earlier error");
    require(ranges_.size() < kSlots,
            "gradient sum (hierarchical): more than " + std::to_string(kSlots) + " ranges in one step");
    if (!this->mark(off, n)) return;
    const Stopwatch t;
    ranges_.push_back({off, n});
    hash_ = mix(mix(hash_, off), n);
    // Release: the layer's gradient (written by this rank's threads, joined before this call) is
    // visible to a rank that sees the new count.
    headers_[static_cast<std::size_t>(rank_)]->published.store(base_ + ranges_.size(), std::memory_order_release);
    node_sum(false);
    this->cur_.node_s += t.seconds();
    if (inter_) {
        const Stopwatch ti;
        feed(false);
        this->cur_.inter_s += ti.seconds();
    }
    this->cur_.mpi_s += t.seconds();
    ++this->cur_.buckets;
    this->cur_.bytes += n * sizeof(G);
}

template <class G>
void HierSum<G>::sum_chunk(const Range& r, std::size_t chunk)
{
    const std::size_t lo = r.off + chunk * kChunk;
    const std::size_t hi = r.off + std::min(r.n, (chunk + 1) * kChunk);
    if (bufs_.size() == 1 && static_cast<const void*>(bufs_[0]) == partial_) return; // the node's sum is the gradient
    node_range(bufs_.data(), bufs_.size(), partial_, lo, hi);
}

template <class G>
void HierSum<G>::node_sum(bool block)
{
    for (; next_sum_ < ranges_.size(); ++next_sum_) {
        const std::uint64_t g = base_ + next_sum_; // the range's number since the start
        if (min_published() < g + 1) {
            if (!block) return; // ready(): only what every rank of the node has marked
            wait_until([&] { return min_published() >= g + 1 || short_closed(g + 1) || peer_failed(); });
            if (min_published() < g + 1)
                fail(peer_failed() ? "another rank found the mismatch"
                                   : "a rank closed the step without marking range " + std::to_string(next_sum_ + 1));
        }
        const trace::Span span("grad node sum", trace::host, -1,
                               static_cast<std::int64_t>(ranges_[next_sum_].n * sizeof(G)));
        const Range r = ranges_[next_sum_];
        const std::size_t chunks = chunks_of(r.n);
        std::atomic<std::uint64_t>& claim_slot = claims_[g % kSlots];
        std::atomic<std::uint64_t>& store_slot = stored_[g % kSlots];
#pragma omp parallel if (chunks > 1)
        for (std::optional<std::size_t> c; (c = claim(claim_slot, g, chunks));) {
            sum_chunk(r, *c);
            count_done(store_slot, g);
        }
    }
}

template <class G>
void HierSum<G>::feed(bool block)
{
    for (; next_feed_ < next_sum_; ++next_feed_) {
        const std::uint64_t g = base_ + next_feed_;
        const Range r = ranges_[next_feed_];
        const std::size_t chunks = chunks_of(r.n);
        if (done_count(stored_[g % kSlots], g) < chunks) {
            if (!block) return; // another rank of the node still sums a chunk of it
            wait_until([&] { return done_count(stored_[g % kSlots], g) >= chunks || peer_failed(); });
            if (done_count(stored_[g % kSlots], g) < chunks) fail("another rank found the mismatch");
        }
        inter_->ready(r.off, r.n);
    }
}

template <class G>
void HierSum<G>::inter_finish()
{
    const trace::Span span("grad inter-node", trace::host, -1, static_cast<std::int64_t>(this->n_ * sizeof(float)));
    feed(true);
    // Its marks are this step's ranges: where they leave elements unmarked it throws after its wait,
    // as end_step() below does on every rank; the result is announced either way, so no rank of the
    // node waits for it.
    try {
        inter_->finish();
    } catch (const Error&) {
    }
    headers_[0]->summed.store(step_ + 1, std::memory_order_release);
}

template <class G>
void HierSum<G>::share()
{
    const trace::Span span("grad share", trace::host, -1, static_cast<std::int64_t>(this->n_ * sizeof(G)));
    HierSumHeader& leader = *headers_[0];
    wait_until([&] { return leader.summed.load(std::memory_order_acquire) > step_ || peer_failed(); });
    if (leader.summed.load(std::memory_order_acquire) <= step_) fail("another rank found the mismatch");
    G* own = bufs_[static_cast<std::size_t>(rank_)];
    if (static_cast<const void*>(own) != partial_)
        for (const Range& r : ranges_) {
            const float* src = partial_ + r.off;
            G* dst = own + r.off;
#pragma omp parallel for simd if (r.n > 65536)
            for (std::size_t i = 0; i < r.n; ++i) dst[i] = from_float<G>(src[i]);
        }
    // Finished: this rank no longer reads the partial sum. When all ranks of the node have
    // finished, the next step may write it (and the leader's gradient).
    HierSumHeader& me = *headers_[static_cast<std::size_t>(rank_)];
    const int slot = static_cast<int>(step_ % 2);
    me.hash[slot].store(hash_, std::memory_order_relaxed);
    me.finished.store(step_ + 1, std::memory_order_release);
    wait_until([&] {
        return std::all_of(headers_.begin(), headers_.end(),
                           [&](const HierSumHeader* h) { return h->finished.load(std::memory_order_acquire) > step_; });
    });
}

template <class G>
void HierSum<G>::finish()
{
    require(!failed_, "gradient sum (hierarchical): unusable after an earlier error");
    this->finish_step(static_cast<std::int64_t>(this->n_ * sizeof(G)), [this] {
        HierSumHeader& me = *headers_[static_cast<std::size_t>(rank_)];
        me.closed.store(step_ + 1, std::memory_order_release); // this step's ranges are all published
        Stopwatch t;
        node_sum(true);
        const double node_s = t.seconds();
        t.restart();
        if (inter_) inter_finish();
        const double inter_s = t.seconds();
        t.restart();
        share();
        const double share_s = t.seconds();
        this->cur_.node_s += node_s;
        this->cur_.inter_s += inter_s;
        this->cur_.share_s += share_s;
        this->cur_.mpi_s += node_s + inter_s + share_s;
        const int slot = static_cast<int>(step_ % 2);
        bool failed = false, differs = false;
        for (const HierSumHeader* h : headers_) {
            failed = failed || h->finished.load(std::memory_order_acquire) == kFailed;
            differs = differs || h->hash[slot].load(std::memory_order_relaxed) != hash_;
        }
        base_ += ranges_.size();
        ranges_.clear();
        next_sum_ = next_feed_ = 0;
        hash_ = 0;
        ++step_;
        if (failed) fail("another rank found the mismatch");
        if (differs) fail("offsets or sizes differ");
    });
}

template class HierSum<float>;
template class HierSum<bf16>;

} // namespace ompml
