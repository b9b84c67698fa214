// Batches for training and evaluation, on the device.
//
// Each epoch visits the split in an order that depends only on (seed, epoch): the same on
// every rank and for every rank count (epoch_order below). A global batch is rows
// [step*B, step*B + B) of that order (the last one may be shorter); rank r of P takes its
// contiguous slice [b*r/P, b*(r+1)/P) of a global batch of b rows (sizes differ by at most one;
// a rank may get none in a short last batch). Concatenating the slices of ranks 0..P-1 gives
// the P = 1 batch, in the same order.
//
// Images travel to the device as stored (uint8 or float32) and are normalised there to float
// (x / 255 for uint8, Backend::normalize_u8 on the caller's thread); labels go up as int32.
// While the caller trains on one batch, a background thread gathers and uploads the next one
// into a second set of device buffers (double buffering). Errors in that thread are rethrown
// by next(). Where the kernels run on host cores and the split is in memory, there is no such
// thread: next() gathers its own batch (a copy from memory; a thread beside the OpenMP team
// would only take its time from one of the team's cores).
//
// In-memory mode (default) reads this split once and holds it in host memory as stored (uint8
// stays uint8). Streaming mode reads each batch's rows for this rank from the file (sorted,
// as one union of row runs) and holds only the labels in memory. In streaming mode the
// background thread calls HDF5: every other HDF5 call made while a Loader exists must hold
// h5::lock() (the h5 wrappers do; see io/h5.hpp).
//
// The background thread copies into device memory through Backend::memory(); it adopts the
// OpenMP default device of the thread that called start_epoch (a per-thread setting).
//
// Collective reads (streaming with LoaderOptions::comm of more than one rank). Each rank's
// reader thread reads its slice of every global batch with one collective MPI-IO read
// (h5::read_row_set_collective) over the file's own duplicate of comm; a rank with no rows in
// a short last batch joins with an empty selection. The rules that keep this from hanging:
//   - Every rank of comm builds its Loader with the same options and makes the same calls
//     (start_epoch, next, destruction) in the same order, from one thread: the training loop
//     does. The constructor does not communicate (so its errors may be agreed on with
//     collective_try); the first start_epoch opens the file collectively.
//   - A reader reads a step exactly when its slot has been handed back by next() (or freed by
//     start_epoch), also when it is being stopped. So which steps it reads depends only on the
//     caller's calls, never on timing, and every rank's reader makes the same reads.
//   - At most one collective Loader of a process has a running reader. start_epoch, and next()
//     after a pause, first pause the others: each pausing reader finishes the reads it was
//     asked for and stops; a paused loader's next() resumes it. (Two collective readers would
//     each hold h5::lock() inside their own collective read, in an order that can differ from
//     rank to rank: a deadlock. The training loop alternates train and test loaders anyway.)
//     Opening and closing a file are collective too, and run with the other readers paused.
//   - The reader thread makes MPI calls while the caller's thread makes its own, so collective
//     reads need MPI_THREAD_MULTIPLE; with a lower thread level, a serial HDF5 or, by default,
//     compressed images, the loader reads independently (read_mode() says which and why).
//   - A Loader destroyed while an exception unwinds (an error path) leaves its file to
//     MPI_Finalize (h5::close_at_mpi_finalize) instead of a collective close that might wait
//     for ranks that are about to be aborted.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/enum_names.hpp"
#include "io/dataset.hpp"
#include "nn/trainer.hpp"

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ompml {

// How a streaming loader with a communicator reads. automatic: collectively, except for filtered
// (compressed) images: HDF5 1.10's collective reads of those bypass the chunk cache and
// inflate every chunk a batch touches, on every batch (a Fashion-MNIST epoch on 2 ranks took
// 58 s instead of 1.2 s; data/README.md). collective: also for filtered images.
enum class StreamReads { automatic, collective, independent };
template <>
struct EnumNames<StreamReads> {
    static constexpr const char* what = "streaming reads";
    static constexpr std::pair<StreamReads, const char*> names[] = {{StreamReads::automatic, "auto"},
                                                                    {StreamReads::collective, "collective"},
                                                                    {StreamReads::independent, "independent"}};
};

struct LoaderOptions {
    std::string path;
    Split split = Split::train;
    int global_batch = 128;
    int rank = 0;
    int nranks = 1;
    std::uint64_t seed = 1;
    bool shuffle = true;    // false: file order (evaluation)
    bool streaming = false; // true: read batches from the file instead of holding the split in memory
    // Streaming under MPI: the ranks that read this split together, rank `rank` of `nranks`
    // in it. With more than one rank, batches are read collectively (see the top of this
    // file). MPI_COMM_NULL: every rank reads independently.
    MPI_Comm comm = MPI_COMM_NULL;
    StreamReads reads = StreamReads::automatic;
    // Only these rows of the split (strictly increasing; a validation set held out of the
    // training split, validation_rows below); empty: all. The loader's sample i is row rows[i].
    std::vector<std::uint64_t> rows;
};

// A BatchSource (nn/trainer.hpp): the trainer and evaluate() read batches from it directly.
class Loader final : public BatchSource {
public:
    Loader(Backend& be, const LoaderOptions& opt);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    const DatasetInfo& dataset() const;
    std::uint64_t samples() const override;        // in this split
    std::int64_t steps_per_epoch() const override; // ceil(samples / global_batch)

    std::uint64_t features() const; // per sample (the network's input width)
    int max_rows() const;           // most rows one rank's batch can have: ceil(B / P)
    // How batches are read, for reports: "in memory", "independent reads", "collective MPI-IO
    // reads", or "independent reads: <why not collective>".
    const std::string& read_mode() const;
    // What this loader read of its split, hashed (io/fingerprint.hpp): every label, and every
    // image in memory mode, the first and last chunks of images when streaming. Ranks that
    // opened the same file get the same value.
    std::uint64_t content_hash() const;

    // Starts epoch `epoch` at global step `first_step` within it (resume): the batches that
    // follow are exactly those an uninterrupted epoch gives from that step on. Invalidates the
    // current batch. next() without a start_epoch() starts epoch 0 at step 0.
    void start_epoch(std::int64_t epoch, std::int64_t first_step = 0) override;
    // The next batch of the epoch; false at its end (and after it, until the next start_epoch).
    // The batch stays valid until the next call of next() or start_epoch(). Before it hands
    // the previous batch's buffers back to the reader thread it calls Backend::synchronize(),
    // so kernels still reading them are finished.
    bool next(DeviceBatch& out) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The sample order of an epoch: a permutation of [0, n) that is a function of (seed, epoch):
// Fisher-Yates from the identity, for i = n-1 down to 1 swapping i with j = floor(u * (i+1)),
// where u is the 64-bit word (v[2] << 32 | v[3]) of Rng(seed, kShuffleStream + epoch).bits(i)
// taken as a fraction of 2^64.
constexpr std::uint64_t kShuffleStream = 0x5348554600000000ull; // "SHUF"
std::vector<std::uint64_t> epoch_order(std::uint64_t n, std::uint64_t seed, std::int64_t epoch);

// --val-fraction: the rows of a split of n rows held out for validation, round(fraction * n) of
// them (at least 1, and at most n - 1), chosen by a permutation that depends only on (n, seed)
// (stream kValStream, as epoch_order draws it), returned in increasing order; and the rows
// left for training (the complement). Throws Error naming --val-fraction when no row would be
// left on either side.
constexpr std::uint64_t kValStream = 0x56414C0000000000ull; // "VAL"
std::vector<std::uint64_t> validation_rows(std::uint64_t n, double fraction, std::uint64_t seed);
std::vector<std::uint64_t> training_rows(std::uint64_t n, const std::vector<std::uint64_t>& validation);

// The slice [begin, end) of a global batch of `rows` rows that rank `rank` of `nranks` takes.
struct RowSlice {
    int begin = 0, end = 0;
};
RowSlice rank_slice(int rows, int rank, int nranks);

} // namespace ompml
