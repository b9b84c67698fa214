// NodeSum<G>: sums the gradient over ranks that share a node, through shared memory.
//
// Every rank's gradient lives in node-shared memory (the model allocated it from the plan's
// NodeMemory, node_memory.hpp), so a rank can load and store the others' buffers directly. A
// range that every rank has marked ready is cut into chunks; whichever rank claims a chunk (an
// atomic counter) adds it up from all P buffers, in the split-tree order over ranks
// (core/split_tree.hpp, rank_tree_sum.hpp: ((b0 + b1) + b2) for 3 ranks, (b0 + b1) + (b2 + b3)
// for 4), and stores the sum into all P buffers. Per step the ranks together read each buffer once
// and write it once: no messages, no temporary copies. The tree is only the order of the additions
// per element, 2048 elements at a time in L1 (P = 2, 3: one and two passes over the block instead
// of the running sum's two and three). Measured with ompml-scale --grad-transport shm, 2 ranks,
// 2-vCPU AMD EPYC Zen 5, shared machine, 5 and 4 alternating rounds: comm per step 6.6 ms
// [5.0-9.0] against 8.0 [4.9-12.0] in rank order at 5.8M parameters, 16.1 [10.4-20.9] against
// 24.4 [6.4-29.6] at 20M; step times the same within the load's noise.
//
// The rank that reaches finish() first does most of the summing while the others are still in
// backward, so the sum hides in the ranks' skew instead of adding to it (docs/results/scaling.md
// has the figures).
//
// G = bf16 (--grad-dtype bf16): the rank that claims a chunk adds the P bf16 values in float, in
// the same split-tree order, and stores the bf16-rounded sum into all P buffers: each element ends
// as bf16(split-tree sum of b_r), exactly as MpiExchange computes it, and half the bytes go
// through shared memory. Backward writes its bf16 gradient straight into the window.
//
// Ranks signal each other through counters in a small control window of NodeSum's own
// (release/acquire atomics): how many ranges each has marked, and how many steps each has
// finished. ready() only publishes; finish() claims and sums chunks of each range as soon as every
// rank has marked it, then waits until every rank has finished. A rank never writes its next
// step's gradient before that, so no rank still reads it. Every rank must mark the same ranges in
// the same order (one model, one layout); finish() checks a running hash of them, and a rank that
// waits for a range another rank never marked notices when that rank finishes: then every rank
// throws (no hang).
//
// Determinism: each element is summed once, in the split-tree order over ranks, whoever sums it:
// all ranks hold bitwise the same sum, the same bits as MpiExchange's, and the same rank count
// gives the same bits run after run. The order is fixed (GradSumOptions::fixed_order).
//
// Waiting spins, then yields, then naps (so oversubscribed ranks leave the core to the rank they
// wait for). A rank that dies or aborts ends the job through mpirun/MPI_Abort, as it would inside
// any MPI call. This rank's OpenMP threads share its chunks.
#pragma once

#include "parallel/grad_sum.hpp"
#include "parallel/node_memory.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

struct NodeSumHeader; // per-rank counters, node_sum.cpp

template <class G>
class NodeSum final : public GradientSum<G> {
public:
    // Collective over mem's communicator: allocates the control window from mem. bufs: every
    // rank's (n) gradient in rank order (NodeMemory::peers of this rank's).
    NodeSum(const NodeMemory& mem, std::vector<G*> bufs, std::size_t n);
    ~NodeSum() override; // collective (frees the control window), except while unwinding from an error
    NodeSum(const NodeSum&) = delete;
    NodeSum& operator=(const NodeSum&) = delete;

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return "shm"; }

private:
    struct Range {
        std::size_t off, n;
    };
    void sum(); // finish()'s work: every range, then the wait for every rank
    void sum_chunk(const Range& r, std::size_t chunk);
    std::uint64_t min_published() const;
    bool peer_finished() const;                      // some rank has finished this step
    [[noreturn]] void fail(const std::string& what); // marks this rank failed (peers stop waiting), throws

    const NodeMemory& mem_;
    int rank_ = 0;
    std::vector<G*> bufs_;                         // every rank's gradient, rank order
    void* control_ = nullptr;                      // this rank's segment of the control window
    std::vector<NodeSumHeader*> headers_;          // every rank's counters
    std::atomic<std::uint64_t>* claims_ = nullptr; // in rank 0's segment: chunks taken per range
    std::vector<Range> ranges_;                    // marked this step, in order
    std::uint64_t base_ = 0;                       // ranges marked in earlier steps (the counters never reset)
    std::uint64_t step_ = 0;                       // steps finished
    std::uint64_t hash_ = 0;                       // of this step's ranges
    bool failed_ = false;
};

extern template class NodeSum<float>;
extern template class NodeSum<bf16>;

} // namespace ompml
