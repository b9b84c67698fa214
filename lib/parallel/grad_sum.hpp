// The gradient sum over ranks: the model's ONE flat gradient, summed bucket by bucket while the
// backward pass is still running.
//
// Each rank's gradient is already scaled by 1/global_batch (the loss is a sum over the rank's
// slice of the global batch divided by the global batch size), so the SUM over ranks is the
// mean over the global batch: averaging is by global sample count, whatever the rank count.
//
//   GradSumPlan plan(mpi.comm(), be.memory(), {.gpu_memory = be.on_gpu()});  // collective, once
//   DeviceBuffer<G> dG(plan.gradient_memory(), n);  // the model's gradient (G = float or bf16), for its life
//   const auto sum = plan.make(dG.data(), n);       // collective: the transport over that gradient
//   for (layer = L-1 .. 0) {                        // backward pass, last layer first
//       backward(layer);                            // writes dW, db of this layer (final now)
//       be.synchronize();                           // MPI, a staging copy or another rank reads it next
//       sum->ready(layer.grad_offset, layer.grad_count);
//   }
//   sum->finish();                                  // dG holds the sum over ranks, on every rank
//   optimizer_step();
//
// The model owns its gradient; a transport is handed a view of it (a pointer and a length) and
// never allocates or copies the whole gradient itself, except for the host mirror of staging.
// Every element must be marked ready exactly once per step.
//
// Transports, decided once by GradSumPlan (the same way on every rank) and made by it:
//   none   1 rank: the sum is the gradient itself; no MPI call at all (NoSum, nn/gradient_sum.hpp).
//   shm    every rank on one node and the gradient host memory: the model allocates its gradient
//          in a node-shared window (node_memory.hpp), backward writes straight into it, and the
//          ranks sum the buffers with loads and stores: no messages, no copies (node_sum.hpp).
//   hier   ranks on several nodes, some node holding several, and the gradient host memory: the
//          model allocates its gradient in its node's window; the node's ranks sum through shared
//          memory into a float partial sum, one leader per node sums the partial sums between the
//          nodes by MPI buckets as their node sums complete during backward, and every rank takes
//          the result from its node's partial sum (hier_sum.hpp). Nodes: node_layout.hpp.
//   mpi    buckets of non-blocking collectives on the gradient itself, or on a host mirror where
//          MPI may not read the gradient's memory (staged_sum.hpp). bf16: the exchange (alltoall
//          + the owner's fp32 sum + allgather, mpi_exchange.hpp). fp32: the same exchange in fp32
//          or MPI_Iallreduce (mpi_sum.hpp), chosen by GradSumOptions::mpi_fp32 (below).
//   blocking allreduce  ompml-scale's comparison: one MPI_Allreduce after backward (blocking_sum.hpp).
//
// The order of the sum over ranks: the split tree over rank index (core/split_tree.hpp),
//     T(0, P),   T(lo, hi) = T(lo, m) + T(m, hi),   m = lo + (largest power of two < hi - lo)
// ((g0 + g1) + g2 on 3 ranks, (g0 + g1) + (g2 + g3) on 4, a balanced tree for any power of two),
// added in float, the same tree the model sums its chunks of the batch in inside a rank. Every
// transport follows it except MPI_Iallreduce, whose order is MPI's:
//   shm (NodeSum<G>), mpi bf16 and mpi fp32 exchange (MpiExchange<G>): each element is
//       G( T(0, P) of float(g_r) )  (bf16: rounded to nearest even once, core/bf16.hpp)
//       bitwise the same on all ranks, whatever the bucket boundaries and whichever transport.
//   mpi fp32 MPI_Iallreduce (MpiSum): the same bits on all ranks for one bucket layout, run after
//       run; another bucket size or rank count may change the order, hence the bits.
//   hier (HierSum<G>): each node's ranks in the split tree over local rank, then the node sums in
//       the split tree over nodes (the exchange between the leaders; MPI_Iallreduce's order where
//       mpi_fp32 allreduce asks for it, fp32 only), added in float, rounded to G once. With
//       every node's ranks consecutive and the same power-of-two count on every node
//       (split_tree_composes(P, nodes), NodeLayout::composes_split_tree) that is exactly T(0, P):
//       the first kind. Otherwise the two-level tree is another (fixed) order.
// GradSumOptions::fixed_order asks for the first kind; the plan then never picks MpiSum, and picks
// hier only where it composes: elsewhere auto falls back to the flat MPI exchange (note() says
// why, in the run's report) and an explicit hier is an error.
//
// Determinism: every rank gets bitwise the same sums, and the same rank count gives the same bits
// run after run. Rank-count independence holds to float rounding unless the model's sums inside a
// rank and the fixed-order transport make the whole sum over the global batch one split tree
// (issue 23); with bf16 a run on P ranks differs from a 1-rank run by bf16 rounding (2^-8
// relative per element per step), since the rounding happens after the sum over ranks.
#pragma once

#include "core/bf16.hpp"
#include "core/enum_names.hpp"
#include "core/memory.hpp"
#include "nn/gradient_sum.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ompml {

class NodeLayout;
class NodeMemory;

// How the ranks sum the gradient (--grad-transport auto|mpi|shm).
enum class GradTransport {
    automatic, // shm on one node, hier on several nodes where some node holds several ranks, else mpi
               // (shm and hier: where the gradient is host memory)
    mpi,       // MPI buckets always
    shared,    // shared memory; an error where it is not possible
    hier,      // shared memory in each node, MPI between node leaders; an error where it is not possible
};
template <>
struct EnumNames<GradTransport> {
    static constexpr const char* what = "gradient transport";
    static constexpr std::pair<GradTransport, const char*> names[] = {{GradTransport::automatic, "auto"},
                                                                      {GradTransport::mpi, "mpi"},
                                                                      {GradTransport::shared, "shm"},
                                                                      {GradTransport::hier, "hier"}};
};

// How MPI sums fp32 gradients (bf16 always goes by the exchange).
enum class MpiFp32Sum {
    automatic, // the exchange where fixed_order asks for it, else MPI_Iallreduce (measured: mpi_exchange.hpp)
    allreduce, // MPI_Iallreduce buckets (mpi_sum.hpp): MPI's order
    exchange,  // alltoall + the owner's split-tree sum + allgather (mpi_exchange.hpp): fixed order
};
template <>
struct EnumNames<MpiFp32Sum> {
    static constexpr const char* what = "MPI fp32 sum";
    static constexpr std::pair<MpiFp32Sum, const char*> names[] = {
        {MpiFp32Sum::automatic, "auto"}, {MpiFp32Sum::allreduce, "allreduce"}, {MpiFp32Sum::exchange, "exchange"}};
};

struct GradSumOptions {
    GradTransport transport = GradTransport::automatic;
    MpiFp32Sum mpi_fp32 = MpiFp32Sum::automatic;
    // The sum over ranks must be the split tree over rank index (see above), whatever the bucket
    // size: makes auto pick the exchange for fp32 MPI (staged where the gradient is device
    // memory), and refuses only what cannot be in that order: mpi_fp32 allreduce, and
    // make_blocking_allreduce. shm and bf16 are always in that order.
    bool fixed_order = false;
    // MPI: send a bucket once this many MB (counted in FLOAT bytes, whatever G) are ready;
    // <= 0: one bucket in finish()
    double bucket_mb = 4.0;
    bool force_staging = false; // copy through host memory even where MPI could read the buffer
    bool gpu_memory = false;    // the gradient is CUDA device memory (cuda backend, omp on an NVIDIA GPU)
    // Optional page-locking of the staging mirror (e.g. cudaHostRegister / cudaHostUnregister
    // from the CUDA backend): pinned memory makes the staging copies DMA at full speed.
    std::function<void(void*, std::size_t)> pin_host;
    std::function<void(void*)> unpin_host;
    // Tests only: nodes of this many consecutive ranks instead of MPI's (node_layout.hpp), so the
    // two-level sum runs on one machine; 0: the real nodes.
    int fake_node_ranks = 0;
};

// Collective: decides, once and the same way on every rank, which transport sums gradients for
// this communicator and memory, and provides the memory the model must allocate its gradient in.
// auto: shared memory where every rank is on one node and the gradient would be host memory,
// hierarchical where the ranks are on several nodes, some node holds several and the gradient
// would be host memory, else MPI; shm or hier where that is impossible: Error on every rank naming
// why. fixed_order with mpi_fp32 allreduce: Error on every rank naming why.
class GradSumPlan {
public:
    GradSumPlan(MPI_Comm comm, const MemorySpace& mem, GradSumOptions opt = {});
    ~GradSumPlan();
    GradSumPlan(const GradSumPlan&) = delete;
    GradSumPlan& operator=(const GradSumPlan&) = delete;

    // Where the model allocates its gradient: a node-shared window memory space (shm, hier; its
    // allocate and deallocate are collective), else `mem`. Must outlive the model's gradient
    // buffer and the transport.
    const MemorySpace& gradient_memory() const;
    // Collective: the transport over the model's gradient (grad: device pointer of n elements
    // allocated from gradient_memory()). Explicitly instantiated for float and bf16.
    template <class G>
    std::unique_ptr<GradientSum<G>> make(G* grad, std::size_t n) const;
    // Collective, for ompml-scale's comparison: no buckets, one blocking MPI_Allreduce of the
    // whole (float) gradient in finish(), staged through host memory where the gradient is not
    // host memory. Error with fixed_order (MPI's order) on more than 1 rank.
    std::unique_ptr<GradientSum<float>> make_blocking_allreduce(float* grad, std::size_t n) const;
    int ranks() const { return size_; }
    // Whether make<float> sums in the split-tree order (1 rank, shm, or the fp32 exchange); make<bf16>
    // always does.
    bool fp32_fixed_order() const;
    // The transport make() builds: "none" (1 rank), "shm", "hier" or "mpi".
    const char* chosen() const;
    // Where auto did not take the transport the layout suggests, why ("" otherwise): for the report.
    const std::string& note() const { return note_; }

private:
    template <class G>
    std::unique_ptr<GradientSum<G>> make_hier(std::vector<G*> bufs, std::size_t n) const;

    MPI_Comm comm_;
    const MemorySpace& mem_;
    GradSumOptions opt_;
    int size_ = 1;
    MpiFp32Sum fp32_ = MpiFp32Sum::allreduce; // resolved: allreduce or exchange
    std::unique_ptr<NodeLayout> layout_;      // the nodes (several ranks, a transport other than mpi asked for)
    std::unique_ptr<NodeMemory> node_;        // the window memory space, where shm or hier was chosen
    bool hier_ = false;                       // hier chosen: node_ is the node's window space
    std::string note_;
};

} // namespace ompml
