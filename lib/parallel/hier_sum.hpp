// HierSum<G>: the gradient summed in two levels, for ranks on several nodes with more than one
// rank on a node (Horovod's hierarchical allreduce, with the node's level in shared memory):
//   1. node sum: the ranks of a node sum their gradients through shared memory, as NodeSum does
//      (the model allocated its gradient in the node's NodeMemory window, node_memory.hpp):
//      chunks of every range all the node's ranks have marked are claimed by whichever rank comes
//      first (node_sync.hpp) and added up in float into the node's partial sum, a float buffer in
//      the window (for G = float the leader's own gradient, for bf16 one of its own);
//   2. inter-node: one leader per node (local rank 0) hands each range whose node sum is complete
//      to an MPI transport over the leaders' communicator and the partial sum (MpiExchange<float>'s
//      exchange, or MpiSum's MPI_Iallreduce buckets where --mpi-fp32-sum allreduce asks for them),
//      so the buckets go between the nodes while backward still runs, as the one-level
//      transports' do;
//   3. share: once the leader's transport has finished, every rank of the node copies the result
//      from the partial sum into its own gradient (rounded to bf16 there, once, where G is bf16).
// The node's ranks sum in ready() what every rank of the node has marked, and in finish() the
// rest, so the first rank to reach finish() sums most of what is left while the others are still
// in backward. Per step the node's memory is read twice per rank's buffer (sum, share) and the
// network carries the inter-node sum of the partial: (N - 1)/N x n x 2 x 4 bytes per leader for the
// exchange, about the same for a ring allreduce, whatever the ranks per node, against the flat
// transports' n x 2 x sizeof(G) per RANK through the same links.
//
// Order of the sum (grad_sum.hpp has the overview): each element is
//     G( S(0, N) over nodes of T_node ),   T_node = T(first, first + L) of float(g_r) over the node's ranks,
// each level in the split tree (core/split_tree.hpp) over local rank, then over node (leaders in
// rank order); the inter-node level is exactly that where it is the exchange (the default), MPI's
// order where it is MPI_Iallreduce. With the exchange, every node's ranks consecutive and the
// same power-of-two count L on every node (NodeLayout::composes_split_tree), it is bitwise the
// split tree T(0, P) over all ranks, the same bits as NodeSum and MpiExchange compute, whatever
// the bucket size: the plan takes it for fixed_order (reproducible mode) only then, and otherwise
// falls back to the flat exchange. bf16: the node sums and the inter-node sums are float (float on
// the wire between nodes: one rounding, as MpiExchange), rounded to bf16 once in the share.
//
// Synchronization (a control window of its own in the node's NodeMemory, release/acquire
// counters): per rank how many ranges it has marked, whether it has closed the step (entered
// finish(): its marks are final) and how many steps it has finished; per range the chunks claimed
// and the chunks stored; the leader's count of steps whose sum over all nodes is in the partial
// sum. A rank finishes a step after its share, and every rank waits until every rank of its node
// has finished before it returns: no rank writes its next step's gradient (or sums into the
// partial sum) while another still reads it. The node's ranks must mark the same ranges in the
// same order (one model, one layout): a rank waiting for a range another rank closed the step
// without, or a mismatch of the ranges' hashes, ends every rank of the node with an Error (no
// hang); the leaders hand the inter-node transport the same ranges in the same order on every
// node, as the one-level transports do (the configuration is agreed on before).
//
// Costs: for bf16 a float partial sum of n elements in the window per rank (only the leader's is
// used: NodeMemory allocates the same size on every rank). Waiting spins, yields, then naps
// (node_sync.hpp). This rank's OpenMP threads share its chunks.
#pragma once

#include "parallel/grad_sum.hpp"
#include "parallel/node_memory.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ompml {

struct HierSumHeader; // per-rank counters, hier_sum.cpp

template <class G>
class HierSum final : public GradientSum<G> {
public:
    // The inter-node transport over the partial sum (n floats in host memory), made on the leader.
    using MakeInter = std::function<std::unique_ptr<GradientSum<float>>(float* partial)>;

    // Collective over mem's communicator (the node's ranks), and over the leaders where make_inter
    // is. bufs: the node's gradients in local rank order (NodeMemory::peers of this rank's).
    // nodes: how many nodes; inter_name: the inter-node transport's describe(), for every rank's.
    HierSum(const NodeMemory& mem, std::vector<G*> bufs, std::size_t n, int nodes, std::string inter_name,
            const MakeInter& make_inter);
    ~HierSum() override; // collective over the node (frees its windows), except while unwinding from an error
    HierSum(const HierSum&) = delete;
    HierSum& operator=(const HierSum&) = delete;

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return "hier"; }

private:
    struct Range {
        std::size_t off, n;
    };
    void node_sum(bool block); // sums the chunks of the ranges every rank of the node has marked
    void sum_chunk(const Range& r, std::size_t chunk);
    void feed(bool block); // leader: ranges whose node sum is complete, to the inter-node transport
    void inter_finish();   // leader: the inter-node transport's finish, then the result is announced
    void share();          // the result into this rank's gradient, then the wait for the node's ranks
    std::uint64_t min_published() const;
    bool short_closed(std::uint64_t need) const;     // a rank closed the step with fewer ranges
    bool peer_failed() const;                        // a rank of the node has failed
    [[noreturn]] void fail(const std::string& what); // marks this rank failed (peers stop waiting), throws

    const NodeMemory& mem_;
    int rank_ = 0, nodes_ = 1;
    std::vector<G*> bufs_;                         // the node's gradients, local rank order
    float* partial_ = nullptr;                     // (n) the node's sum, then the sum over nodes
    void* partial_alloc_ = nullptr;                // bf16: this rank's segment of the partial sum's window
    void* control_ = nullptr;                      // this rank's segment of the control window
    std::vector<HierSumHeader*> headers_;          // every rank's counters
    std::atomic<std::uint64_t>* claims_ = nullptr; // in local rank 0's segment: chunks taken per range
    std::atomic<std::uint64_t>* stored_ = nullptr; // ... and chunks stored per range
    std::string inter_name_;                       // the inter-node transport's describe()
    std::unique_ptr<GradientSum<float>> inter_;    // leader only
    std::vector<Range> ranges_;                    // marked this step, in order
    std::size_t next_sum_ = 0;                     // the first range this rank has not summed its share of
    std::size_t next_feed_ = 0;                    // leader: the first range not handed to inter_
    std::uint64_t base_ = 0;                       // ranges marked in earlier steps (counters never reset)
    std::uint64_t step_ = 0;                       // steps finished
    std::uint64_t hash_ = 0;                       // of this step's ranges
    bool failed_ = false;
};

extern template class HierSum<float>;
extern template class HierSum<bf16>;

} // namespace ompml
