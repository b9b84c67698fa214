// MpiExchange<G>: the gradient summed over ranks by exchanges of ompml's own, in a fixed order:
// per bucket an alltoall of chunks, the owner's sum of its chunk in float, an allgather.
//   G = bf16 (--grad-dtype bf16): bf16 on the wire, sums in fp32: half the bytes of the fp32
//            allreduce go between the ranks.
//   G = float: the fixed-order fp32 sum (GradSumOptions::mpi_fp32 exchange, or fixed_order): the
//            same bytes as a ring allreduce, but the order of the additions is ompml's, not MPI's.
//
// Every element of the sum is
//     G( T(0, P) of float(x_r) ),   T(lo, hi) = T(lo, m) + T(m, hi),   m = split_tree_mid(lo, hi)
// (the ranks' values x_r added in float in the split-tree order over rank index,
// core/split_tree.hpp: ((x0 + x1) + x2) for 3 ranks, (x0 + x1) + (x2 + x3) for 4; rounded to bf16
// once where G is bf16; kept as it is for float): bitwise the same on all ranks and whatever the
// bucket boundaries, since each element's value depends only on the P inputs, never on where a
// bucket cut it or which rank owns it. NodeSum<G> computes the same bits (rank_tree_sum.hpp). With
// the model's own split-tree sums inside each rank this makes the sum over the global batch one
// fixed tree, whatever the rank count (issue 23).
//
// Buckets as MpiSum's (pending_range.hpp). Each bucket is cut into P chunks (c = ceil(n/P)
// elements, the last one shorter); rank q owns chunk q. An MPI_Ialltoallv straight from the
// buffer (started in ready(), moved on by MPI_Testsome after every range) hands every rank the P-1
// other copies of its chunk; the owner sums them and its own in float in split-tree order and
// stores the sum over its own chunk; an MPI_Iallgatherv in place then gives every rank the rest
// of the bucket. Each rank sends (P-1)c elements twice: (P-1)/P x n x 2 x sizeof(G) bytes, which
// for bf16 is half of the 2 (P-1)/P x n x 4 of the fp32 ring allreduce and for float the same,
// and the owner's sum is the only pass over memory besides MPI's. The last range goes by blocking
// calls in finish(), as MpiSum's.
//
// The allgathers go on a duplicate communicator strictly in bucket order (a rank starts bucket
// k's only after bucket k-1's), because the ranks see the alltoalls complete in different orders
// and MPI matches collectives on one communicator by the order they are started.
//
// Why not MPI_Iallreduce (for float: MpiSum): Open MPI's reduction order depends on the count,
// P and the algorithm it picks, so neither the bucket size nor the rank count may change and
// still give the same bits; and on bf16 with a user-defined MPI_Op the reduction tree would round
// to bf16 at every step (log P or P-1 roundings, in an order MPI chooses), which is not
// "accumulate in fp32", and user ops often disable MPI's tuned algorithms. Why the bf16 gradient
// is bf16 end to end (backward writes bf16, the optimizer reads the bf16 sum) rather than
// converted here: with the fp32 gradient rounded before sending and widened after gathering, the
// conversions cost 20-25 ms per step at 20M parameters on 2 ranks, more than the 11 ms of the
// alltoall and allgather, so the bf16 sum saved nothing (measured 2026-11-28,
// docs/results/precision.md).
//
// The owner's sum runs on the host, so a gradient in device memory is always staged (for float
// too, even with a CUDA-aware MPI). The owner's sums count as communication time (mpi_s).
//
// fp32: the exchange against MPI_Iallreduce (MpiSum), measured 2026-12-06 with ompml-scale on a
// 2-vCPU AMD EPYC Zen 5 VM (family 26), Open MPI 4.1.4, 2 ranks x 1 thread, --grad-transport mpi,
// --bucket-mb 4, alternating rounds, machine shared with other builds (load average 3-7):
//   784,2048,2048,10 (5.8M params, 23 rounds): step 96.3 ms [40.0-200.1] vs 91.5 [38.5-180.3],
//     comm 24.6 [7.5-60.7] vs 23.9 [6.0-51.3]; paired per round the exchange is 0.8 ms slower per
//     step, 1.45 ms more comm (median). In the 5 quiet rounds: step 40.4 [40.0-40.8] vs 39.2
//     [38.5-39.5], comm 7.8 [7.5-8.2] vs 6.1 [6.0-6.8]: the owner's pass over memory (~1 ms for
//     2.9M floats) is what MPI's own reduction hides.
//   784,4096,4096,10 (20M params, 3 rounds): step 444 ms [325-509] vs 931 [415-972], comm 83
//     [77-114] vs 575 [248-582]. Open MPI's allreduce falls off a cliff here: one blocking
//     MPI_Allreduce of 4M floats (16 MB) took 22 ms, of 8M floats (32 MB) 300 ms; the exchange of
//     8M floats 41 ms (transport alone, 9 repetitions).
// So the exchange is not at least as fast at both sizes, and MPI_Iallreduce stays the fp32 default
// (kMpiFp32Default, grad_sum.cpp); the exchange is taken where the fixed order is asked for
// (GradSumOptions::fixed_order) or chosen (mpi_fp32 exchange), and at 20M parameters on this
// machine choosing it halves the step.
#pragma once

#include "parallel/grad_sum.hpp"
#include "parallel/pending_range.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

template <class G>
class MpiExchange final : public GradientSum<G> {
public:
    static constexpr const char* kName = "MPI exchange, fixed order"; // describe()'s, before where

    // Collective (duplicates comm for the allgathers). buf: (n) elements in host memory (the
    // gradient, or its host mirror). done: called for every bucket once its sum is in buf.
    MpiExchange(MPI_Comm comm, G* buf, std::size_t n, double bucket_mb, BucketDone done = {});
    ~MpiExchange() override; // collective (frees the duplicate), except while unwinding from an error
    MpiExchange(const MpiExchange&) = delete;
    MpiExchange& operator=(const MpiExchange&) = delete;

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return "mpi"; }

private:
    enum class Stage { exchanging, summing, gathering, done };
    struct Bucket {
        std::size_t off, n;
        std::uint64_t trace_id; // its async span "bucket" (in flight) in a trace
        Stage stage;
        std::size_t c; // elements per chunk, ceil(n / P)
        bool blocking; // the last range, by blocking calls in finish()
    };
    // Per bucket of a step: the received copies of this rank's chunk and the MPI counts, kept
    // from step to step (same layout, so no allocation after the first step).
    struct Wire {
        std::vector<G> recv;             // (P, c): rank r's values of this rank's chunk at r c
        std::vector<int> counts, displs; // chunk q: its length and q c (the allgather's)
        std::vector<int> send_counts;    // counts, 0 for this rank (the alltoall's)
        std::vector<int> recv_counts;    // this rank's chunk length from every other rank, 0 from itself
    };
    void launch(std::size_t off, std::size_t n, bool blocking);
    void advance_gathers();          // sums and starts the allgathers that are due, in bucket order
    void sum_owned(const Bucket& b); // this rank's chunk, summed over the ranks in float
    void gathered(Bucket& b);        // the bucket is summed everywhere
    void complete(int index);
    void progress();
    void wait_all();

    MPI_Comm comm_;
    MPI_Comm gather_comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
    G* buf_; // (n)
    BucketDone done_;
    PendingRange pending_;
    std::vector<Wire> wire_;
    std::size_t next_gather_ = 0;       // the first bucket whose allgather is not started yet
    std::vector<Bucket> buckets_;       // launched this step
    std::vector<MPI_Request> requests_; // one per bucket; MPI_REQUEST_NULL once done
    std::vector<const G*> sources_;     // sum_owned's: the P copies of this rank's chunk, rank order
};

extern template class MpiExchange<float>;
extern template class MpiExchange<bf16>;

} // namespace ompml
