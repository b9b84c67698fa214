// NodeMemory (see node_memory.hpp): shared-memory windows as a memory space.
#include "parallel/node_memory.hpp"

#include "core/check.hpp"
#include "parallel/mpi_check.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <string>

namespace ompml {
namespace {

constexpr std::size_t kPage = 4096;

} // namespace

bool on_one_node(MPI_Comm comm)
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

NodeMemory::NodeMemory(MPI_Comm comm) : comm_(comm)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void* NodeMemory::allocate(std::size_t bytes) const
{
    // Whole pages, at least one, plus a page to align each segment: Open MPI 4.1 puts its own
    // header before the first segment, so a segment starts 264 bytes into a page. Every
    // allocation gets its own non-null, page-aligned address on every rank.
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kPage - 1) / kPage * kPage;
    MPI_Info info = MPI_INFO_NULL;
    MPI_CHECK(MPI_Info_create(&info));
    MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true")); // each segment on its owner's pages
    Window w{MPI_WIN_NULL, {}};
    void* mine = nullptr;
    const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(rounded + kPage), 1, info, comm_, &mine, &w.win);
    const int free_rc = MPI_Info_free(&info); // freed whatever the allocation returned
    MPI_CHECK(rc);
    MPI_CHECK(free_rc);
    for (int q = 0; q < size_; ++q) {
        MPI_Aint seg = 0;
        int disp = 0;
        void* p = nullptr;
        MPI_CHECK(MPI_Win_shared_query(w.win, q, &seg, &disp, &p));
        const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(p);
        const std::size_t skip = static_cast<std::size_t>((kPage - at % kPage) % kPage);
        w.base.push_back(static_cast<char*>(p) + skip);
        // What every rank can use: the smallest segment (peers() checks ranges against it).
        const std::size_t usable = static_cast<std::size_t>(seg) > skip ? static_cast<std::size_t>(seg) - skip : 0;
        w.bytes = q == 0 ? usable : std::min(w.bytes, usable);
    }
    char* own = w.base[static_cast<std::size_t>(rank_)];
    std::memset(own, 0, rounded);  // first touch by the owner
    MPI_CHECK(MPI_Barrier(comm_)); // every segment is zeroed before any rank reads one
    windows_.emplace(own, std::move(w));
    return own;
}

void NodeMemory::deallocate(void* p) const
{
    const auto it = windows_.find(static_cast<const char*>(p));
    if (it == windows_.end()) return; // not one of ours: nothing to free (DeviceBuffer passes only its own)
    // Unwinding from an error: the other ranks may never reach MPI_Win_free; the job is ending.
    if (std::uncaught_exceptions() == 0) MPI_CHECK(MPI_Win_free(&it->second.win));
    windows_.erase(it);
}

void NodeMemory::to_device(void* dst, const void* src, std::size_t bytes) const { std::memcpy(dst, src, bytes); }
void NodeMemory::to_host(void* dst, const void* src, std::size_t bytes) const { std::memcpy(dst, src, bytes); }
void NodeMemory::copy(void* dst, const void* src, std::size_t bytes) const { std::memcpy(dst, src, bytes); }

std::vector<void*> NodeMemory::peers(const void* p, std::size_t bytes) const
{
    const char* c = static_cast<const char*>(p);
    auto it = windows_.upper_bound(c); // the first allocation starting after p
    const bool inside = it != windows_.begin() && c < std::prev(it)->first + std::prev(it)->second.bytes;
    require(inside, "gradient memory: the buffer was not allocated from the node-shared memory space");
    --it;
    const Window& w = it->second;
    const std::size_t off = static_cast<std::size_t>(c - it->first);
    require(bytes <= w.bytes - off,
            "gradient memory: " + std::to_string(bytes) + " bytes at offset " + std::to_string(off) +
                " exceed the node-shared allocation of " + std::to_string(w.bytes) + " bytes");
    std::vector<void*> out;
    for (char* base : w.base) out.push_back(base + off);
    return out;
}

} // namespace ompml
