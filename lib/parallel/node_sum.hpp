// NodeSum: sums one flat float buffer over ranks that share a node, through shared memory.
//
// Every rank's buffer lives in one MPI shared-memory window (MPI_Win_allocate_shared), so a
// rank can load and store the others' buffers directly. A range that every rank has marked
// ready is cut into chunks; whichever rank claims a chunk (an atomic counter in the window)
// adds it up from all P buffers, in rank order 0..P-1, and stores the sum into all P buffers.
// Per step the ranks together read each buffer once and write it once: no messages, no
// temporary copies, no reduction tree. And the rank that reaches finish() first does most of
// the summing while the others are still in backward, so the sum hides in the ranks' skew
// instead of adding to it (docs/results/scaling.md has the figures).
//
//   NodeSum sum(comm, n);                        // collective; comm must be on one node
//   float* g = sum.data();                       // this rank's buffer: backward writes here
//   sum.ready(off, count);  ...                  // per layer, last layer first
//   sum.finish();                                // every buffer now holds the sum
//
// Ranks signal each other through counters in the window (release/acquire atomics): how many
// ranges each has marked, and how many steps each has finished. ready() only publishes;
// finish() claims and sums chunks of each range as soon as every rank has marked it, then
// waits until every rank has finished. A rank never writes its next step's gradient before
// that, so no rank still reads it. Every rank must mark the same ranges in the same order (one
// model, one layout); finish() checks a running hash of them, and a rank that waits for a
// range another rank never marked notices when that rank finishes: then every rank throws
// (no hang).
//
// Determinism: each element is summed once, in rank order, whoever sums it: all ranks hold
// bitwise the same sum, and the same rank count gives the same bits run after run.
//
// bf16 (the dtype argument, --grad-dtype bf16): the window holds bf16 buffers instead
// (data16(); data() is null), which backward writes directly (Mlp::use_grad16_buffer).
// The rank that claims a chunk adds the P bf16 values in float, in rank order, and stores the
// bf16-rounded sum into all P buffers: each element ends as bf16(sum in rank order of g_r), as
// the MPI transport computes it (grad_sync.hpp), and half the bytes go through shared memory.
//
// Waiting spins, then yields, then naps (so oversubscribed ranks leave the core to the rank
// they wait for). A rank that dies or aborts ends the job through mpirun/MPI_Abort, as it
// would inside any MPI call. This rank's OpenMP threads share its chunks.
#pragma once

#include "core/bf16.hpp"
#include "core/precision.hpp"

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

class NodeSum {
public:
    // Collective over comm: true when all its ranks share one node's memory.
    static bool possible(MPI_Comm comm);

    // Collective: allocates n floats (bf16: n bf16) per rank in a shared window (zeroed). comm
    // must satisfy possible(); throws Error otherwise.
    NodeSum(MPI_Comm comm, std::size_t n, Precision dtype = Precision::fp32);
    ~NodeSum(); // collective (MPI_Win_free), except while unwinding from an error
    NodeSum(const NodeSum&) = delete;
    NodeSum& operator=(const NodeSum&) = delete;

    float* data()
    {
        return bufs_.empty() ? nullptr : bufs_[static_cast<std::size_t>(rank_)];
    } // (n) fp32: this rank's buffer, host
    bf16* data16()
    {
        return bufs16_.empty() ? nullptr : bufs16_[static_cast<std::size_t>(rank_)];
    } // (n) the same in bf16
    std::size_t size() const { return n_; }

    // Elements [off, off + count) of this rank's buffer are final for this step.
    void ready(std::size_t off, std::size_t count);
    // Sums what is left and waits for every rank's shares: all buffers hold the sum.
    void finish();

private:
    struct Header; // per-rank counters at the start of its window segment
    struct Range {
        std::size_t off, n;
    };
    void sum_chunk(const Range& r, std::size_t chunk); // in the buffers' dtype
    std::uint64_t min_published() const;
    bool peer_finished() const;                      // some rank has finished this step
    [[noreturn]] void fail(const std::string& what); // marks this rank failed (peers stop waiting), throws

    MPI_Comm comm_;
    MPI_Win win_ = MPI_WIN_NULL;
    int rank_ = 0, size_ = 1;
    std::size_t n_;
    Precision dtype_;
    std::vector<float*> bufs_;                     // fp32: every rank's buffer, rank order
    std::vector<bf16*> bufs16_;                    // bf16: every rank's buffer, rank order
    std::vector<Header*> headers_;                 // every rank's counters
    std::vector<Range> ranges_;                    // marked this step, in order
    std::atomic<std::uint64_t>* claims_ = nullptr; // in rank 0's segment: chunks taken per range
    std::uint64_t base_ = 0;                       // ranges marked in earlier steps (the counters never reset)
    std::uint64_t step_ = 0;                       // steps finished
    std::uint64_t hash_ = 0;                       // of this step's ranges
    bool failed_ = false;
};

} // namespace ompml
