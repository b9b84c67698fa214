// The MPI layer's communicator side: session setup, rank -> device binding, and the collective
// error protocol that keeps "a failure on one rank ends every rank, in bounded time, with a
// clear message" true.
//
//   MpiSession mpi(&argc, &argv);                 // MPI_Init_thread .. MPI_Finalize (RAII)
//   const DeviceBinding dev = mpi.bind_device("cuda");  // before the backend is made
//   agree(mpi.comm(), {{"layers", "784,256,10"}, {"seed", "1"}, {"batch", "256"}});
//   collective_try(mpi.comm(), [&] { data = open_dataset(path); });   // see collective_ok
//   broadcast(mpi.comm(), be.memory(), params.data(), params.size());
//
// Failures that leave the ranks in step (a bad file on some ranks, configs that differ) throw
// CollectiveError on EVERY rank, so the driver's ordinary catch-print-exit path runs everywhere.
// Failures that cannot be agreed on (an MPI error, a rank in a state the others cannot reach)
// call abort_all(), which ends the whole job through MPI_Abort.
//
// Started without mpirun, MPI runs as a singleton: 1 rank, and everything here still works.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/check.hpp"
#include "core/memory.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ompml {

// Thrown on every rank by agree() and collective_ok(): all ranks hold the same message, so a
// driver may print it on rank 0 only (or on every rank; it reads the same).
class CollectiveError : public Error {
public:
    CollectiveError(const std::string& msg, int failed_rank, int failed_count)
        : Error(msg), failed_rank_(failed_rank), failed_count_(failed_count)
    {
    }
    int failed_rank() const { return failed_rank_; } // the lowest failing rank (-1: config mismatch)
    int failed_count() const { return failed_count_; }

private:
    int failed_rank_;
    int failed_count_;
};

// Which device a rank uses: OpenMP's default device always, and the backend's own API (the
// cuda backend's CUDA device, DeviceHook in backend/backend.hpp) where it has one. Both follow
// choose_local_device(), so the rule is one for every backend.
struct DeviceBinding {
    int local_rank = 0;
    int local_size = 1;
    std::string backend;  // the backend bound for ("" when none was named)
    int omp_devices = 0;  // OpenMP devices this rank sees
    int omp_device = -1;  // the default device chosen; -1: none, target regions run on the host
    std::string hook_api; // the backend's own device API ("CUDA"); empty when it has none
    int hook_devices = 0; // devices the hook reported
    int hook_device = -1; // the device given to the hook; -1: none
    // Where this rank's backend runs, one line for the run's log: "local rank 1 of 4: cuda
    // backend on CUDA device 1 of 2 (ranks share devices)".
    std::string describe() const;
};

// The device for a rank: local_rank % device_count, or -1 when there is none. Ranks of a node
// share devices round-robin when there are more ranks than devices.
int choose_local_device(int local_rank, int device_count);

class MpiSession {
public:
    // argc/argv may be null. Asks for MPI_THREAD_MULTIPLE (a streaming Loader's reader thread
    // makes collective MPI-IO reads beside the main thread's reductions; OpenMP threads never
    // call MPI) and aborts below MPI_THREAD_FUNNELED; in between, loaders read independently.
    MpiSession(int* argc, char*** argv);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

    MPI_Comm comm() const { return MPI_COMM_WORLD; }
    int rank() const { return rank_; }
    int size() const { return size_; }
    bool root() const { return rank_ == 0; }
    int local_rank() const { return local_rank_; } // rank among the ranks on this node
    int local_size() const { return local_size_; }
    int thread_level() const { return thread_level_; }
    std::string processor() const { return processor_; } // host name, for reports

    // Binds this rank to the devices of `backend` ("ref", "omp", "cuda": every driver calls
    // this with its --backend): bind_device(backend_device_hook(backend)). Call it before the
    // backend is made: omp memory allocates on the default device of the moment, the cuda
    // backend on the current CUDA device. Makes no MPI call (may run inside collective_try).
    DeviceBinding bind_device(std::string_view backend) const;
    // Sets the OpenMP default device, and the hook's device, to choose_local_device(). Tests
    // pass fake hooks; an empty hook binds OpenMP alone.
    DeviceBinding bind_device(const DeviceHook& hook = {}) const;

private:
    bool owns_ = false; // false when MPI was already initialised by someone else
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, thread_level_ = 0;
    std::string processor_;
};

// "[rank 1/4] " when MPI is running, "" otherwise: the prefix of every message a rank prints.
std::string rank_prefix();

// Prints "<prefix>msg" to stderr once and ends every rank of the job with exit status `code`
// through MPI_Abort(MPI_COMM_WORLD). Without MPI running, exits this process.
[[noreturn]] void abort_all(const std::string& msg, int code = 1);

// A driver's main on every rank: runs body and turns its errors into the exit status.
// A CollectiveError (every rank holds the same message) is printed once by the root and every
// rank returns 1. Any other error was seen by this rank only, while the others may wait for it
// in a reduction: with several ranks it ends the job through abort_all; alone, it returns 1.
// Keep the MpiSession outside: MPI_Finalize must not run while other ranks are blocked.
int run_on_every_rank(const MpiSession& mpi, const char* program, const std::function<int()>& body);

// True when the MPI library can read and write CUDA device memory (Open MPI's
// MPIX_Query_cuda_support(); false where the extension is missing, e.g. Debian's Open MPI).
bool mpi_cuda_aware();

// --- agreement on configuration -------------------------------------------------------------

// Named settings that must be identical on every rank: layers, seed, dataset shape, batch ...
// Keys must not contain '=' or a newline.
using Config = std::vector<std::pair<std::string, std::string>>;

std::uint64_t fnv1a64(std::string_view s);
std::string canonical(const Config& cfg); // "key=value\n" lines in the given order

// Collective. Compares the hash of canonical(cfg) across ranks (one small allreduce); on a
// mismatch, rank 0 gathers every rank's settings and names what differs ("batch: rank 0 has
// '32', rank 1 has '64'"), and every rank throws that CollectiveError.
void agree(MPI_Comm comm, const Config& cfg);

// --- collective errors ----------------------------------------------------------------------

// Collective. Every rank says whether its local step worked; if any failed, every rank throws
// CollectiveError carrying the lowest failing rank's message ("rank 1: <err>", plus how many
// ranks failed). Usage, for work that may fail on some ranks only (opening a file, reading a
// checkpoint, allocating):
//
//   std::string err;
//   try { ds = Dataset::open(path); } catch (const std::exception& e) { err = e.what(); }
//   collective_ok(comm, err.empty(), err);   // all ranks continue, or all throw the same error
//
// The local step must make no MPI calls itself (a rank that threw half-way through a
// collective would leave the others waiting in it).
void collective_ok(MPI_Comm comm, bool ok, const std::string& err);

// The same pattern as one call: runs f() and turns any std::exception into collective_ok.
template <class F>
void collective_try(MPI_Comm comm, F&& f)
{
    std::string err;
    bool ok = true;
    try {
        f();
    } catch (const std::exception& e) {
        ok = false;
        err = e.what();
    }
    collective_ok(comm, ok, err);
}

// collective_try for a driver: with one rank f's error passes through unchanged (no
// "rank 0:" prefix); with more, every rank fails with the same CollectiveError.
template <class F>
void collective_try(const MpiSession& mpi, F&& f)
{
    if (mpi.size() == 1)
        f();
    else
        collective_try(mpi.comm(), std::forward<F>(f));
}

// --- data movement --------------------------------------------------------------------------

// Collective. Copies n floats of a device buffer from `root` to every rank, staged through host
// memory (works for every memory space and every MPI). No MPI call with 1 rank.
void broadcast(MPI_Comm comm, const MemorySpace& mem, float* dev, std::size_t n, int root = 0);
inline void broadcast(MPI_Comm comm, DeviceBuffer<float>& buf, int root = 0)
{
    broadcast(comm, buf.memory(), buf.data(), buf.size(), root);
}

// Collective. In-place sum of a few host doubles (loss, correct counts) over all ranks.
void allreduce_sum(MPI_Comm comm, double* values, int n);

// Collective. The same sum in the split-tree order over rank index (core/split_tree.hpp), as the
// fixed-order gradient sums add: every rank's values gathered (MPI_Allgather of n doubles), then
// added by the same tree on every rank, so the result is bitwise the same everywhere and does
// not depend on the order MPI's reductions take. For a few scalars (P x n doubles gathered).
// No MPI call with 1 rank.
void split_tree_sum(MPI_Comm comm, double* values, int n);

// Collective: true on every rank when `local` is true on some rank (one small allreduce; no MPI
// call with 1 rank).
bool any_rank(MPI_Comm comm, bool local);

// Collective. Rank 0 gets every rank's string in rank order (the others get an empty vector):
// the per-rank lines of a start-up report (host, device binding). No MPI call with 1 rank.
std::vector<std::string> gather_strings(MPI_Comm comm, const std::string& s);

} // namespace ompml
