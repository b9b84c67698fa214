// NodeMemory: a MemorySpace in MPI shared-memory windows, for ranks that share one node. The
// model allocates its gradient here where the gradient sum goes through shared memory
// (GradSumPlan::gradient_memory()), so backward writes straight into memory every rank of the
// node can load and store, and NodeSum (node_sum.hpp) sums the buffers in place: no copies.
//
// Each allocate() is one window (MPI_Win_allocate_shared with alloc_shared_noncontig, so each
// rank's segment lies on pages first touched by its owner), page-aligned, in whole pages, zeroed.
// peers() gives for an address in it the matching addresses of every rank. It is host memory:
// to_device, to_host and copy are memcpy.
//
// allocate() and deallocate() are COLLECTIVE over the communicator: every rank allocates and
// frees the same buffers in the same order (one model, one layout). deallocate() does not free
// the window while this rank unwinds from an error (the other ranks may never reach
// MPI_Win_free; the job is ending), and windows still allocated when the space is destroyed are
// left to MPI_Finalize. Called from the thread that makes MPI calls.
#pragma once

#include "core/memory.hpp"

#include <mpi.h>

#include <cstddef>
#include <map>
#include <vector>

namespace ompml {

// Collective over comm: true when all its ranks share one node's memory.
bool on_one_node(MPI_Comm comm);

class NodeMemory final : public MemorySpace {
public:
    // comm: ranks that satisfy on_one_node (not checked here; makes no MPI call).
    explicit NodeMemory(MPI_Comm comm);
    ~NodeMemory() override = default;
    NodeMemory(const NodeMemory&) = delete;
    NodeMemory& operator=(const NodeMemory&) = delete;

    const char* name() const override { return "node-shared"; }
    void* allocate(std::size_t bytes) const override; // collective
    void deallocate(void* p) const override;          // collective
    void to_device(void* dst, const void* host_src, std::size_t bytes) const override;
    void to_host(void* host_dst, const void* src, std::size_t bytes) const override;
    void copy(void* dst, const void* src, std::size_t bytes) const override;

    // [p, p + bytes) as every rank maps it, in rank order (this rank's entry is p): throws Error
    // unless the range lies in one allocation of this space.
    std::vector<void*> peers(const void* p, std::size_t bytes) const;
    MPI_Comm comm() const { return comm_; }
    int rank() const { return rank_; }

private:
    struct Window {
        MPI_Win win;
        std::vector<char*> base; // every rank's allocation (page-aligned in its segment), rank order
        std::size_t bytes = 0;   // the smallest rank's allocation, what peers() may hand out
    };
    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
    mutable std::map<const char*, Window> windows_; // by this rank's allocation
};

} // namespace ompml
