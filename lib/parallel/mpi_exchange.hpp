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
