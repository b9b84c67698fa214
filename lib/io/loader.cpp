// Loader: epoch order, per-rank slices, in-memory, streaming or collective streaming reads, and
// a background thread that gathers and uploads batch k+1 while the caller trains on batch k
// (or, in memory with host kernels, next() gathering its batch itself: inline_reads).
//
// Two slots of device buffers. Step s of the epoch goes to slot s % 2. A slot cycles
// free -> (reader fills it) ready -> (next() hands it out) in_use -> (the following next()
// releases it after Backend::synchronize()) free. So the reader works at most one batch ahead,
// and never writes buffers that kernels may still read. The reader fills every slot that is
// free, even when asked to stop, so the steps it reads depend only on the caller's calls (the
// rule collective reads need; loader.hpp).
#include "io/loader.hpp"

#include "core/rng.hpp"
#include "core/trace.hpp"
#include "io/fingerprint.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace ompml {

std::vector<std::uint64_t> epoch_order(std::uint64_t n, std::uint64_t seed, std::int64_t epoch)
{
    std::vector<std::uint64_t> order(n);
    std::iota(order.begin(), order.end(), std::uint64_t{0});
    const Rng rng(seed, kShuffleStream + static_cast<std::uint64_t>(epoch));
    for (std::uint64_t i = n; i-- > 1;) {
        const Philox4 b = rng.bits(i);
        const std::uint64_t u = (std::uint64_t{b.v[2]} << 32) | b.v[3];
        const auto j = static_cast<std::uint64_t>((static_cast<unsigned __int128>(u) * (i + 1)) >> 64);
        std::swap(order[i], order[j]);
    }
    return order;
}

std::vector<std::uint64_t> validation_rows(std::uint64_t n, double fraction, std::uint64_t seed)
{
    const auto k = static_cast<std::uint64_t>(std::llround(fraction * static_cast<double>(n)));
    if (k < 1 || k >= n)
        throw Error("--val-fraction " + std::to_string(fraction) + " of " + std::to_string(n) +
                    " training samples leaves " + (k < 1 ? "no validation samples" : "no training samples"));
    // epoch_order's permutation on its own stream: the first k of it, sorted.
    std::vector<std::uint64_t> order = epoch_order(n, seed, static_cast<std::int64_t>(kValStream - kShuffleStream));
    order.resize(k);
    std::sort(order.begin(), order.end());
    return order;
}

std::vector<std::uint64_t> training_rows(std::uint64_t n, const std::vector<std::uint64_t>& validation)
{
    std::vector<std::uint64_t> rows;
    rows.reserve(n - validation.size());
    std::size_t v = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        if (v < validation.size() && validation[v] == i)
            ++v;
        else
            rows.push_back(i);
    }
    return rows;
}

RowSlice rank_slice(int rows, int rank, int nranks)
{
    const auto lo = static_cast<std::int64_t>(rows) * rank / nranks;
    const auto hi = static_cast<std::int64_t>(rows) * (rank + 1) / nranks;
    return RowSlice{static_cast<int>(lo), static_cast<int>(hi)};
}

namespace {

// 64 MiB of chunk cache for streaming reads: random rows of a batch then mostly hit chunks
// inflated for earlier batches instead of inflating a chunk per row.
constexpr std::size_t kChunkCacheBytes = std::size_t{64} << 20;

struct ReadPlan {
    bool collective = false;
    std::string mode; // Loader::read_mode()
};

// Whether a loader reads collectively, and how to describe its reads. `images` is the split's
// image dataset (opened with the serial driver).
ReadPlan plan_reads(const LoaderOptions& opt, hid_t images)
{
    if (!opt.streaming) return {false, "in memory"};
    int ranks = 1;
    if (opt.comm != MPI_COMM_NULL && MPI_Comm_size(opt.comm, &ranks) != MPI_SUCCESS)
        throw Error("loader: LoaderOptions::comm is not a valid MPI communicator");
    if (ranks == 1 || opt.reads == StreamReads::independent) return {false, "independent reads"};
    int me = 0;
    if (MPI_Comm_rank(opt.comm, &me) != MPI_SUCCESS) throw Error("loader: MPI_Comm_rank failed on LoaderOptions::comm");
    require(ranks == opt.nranks && me == opt.rank,
            "loader: rank " + std::to_string(opt.rank) + " of " + std::to_string(opt.nranks) +
                " differs from the communicator's rank " + std::to_string(me) + " of " + std::to_string(ranks));
    if (!h5::kHaveParallel) return {false, "independent reads: HDF5 is built without parallel support"};
    int level = MPI_THREAD_SINGLE;
    if (MPI_Query_thread(&level) != MPI_SUCCESS) throw Error("loader: MPI_Query_thread failed");
    if (level < MPI_THREAD_MULTIPLE)
        return {false, "independent reads: collective reads from the reader thread need MPI_THREAD_MULTIPLE"};
    if (opt.reads == StreamReads::automatic && h5::is_filtered(images))
        return {false, "independent reads: compressed images (collective reads would bypass the chunk cache)"};
    return {true, "collective MPI-IO reads"};
}

// "data.h5: /train/images: row 3, column 2 is nan: float32 images must be finite". Rows are
// file rows, columns the index into a sample's features (row-major over H, W for N x H x W).
[[noreturn]] void non_finite_image(const LoaderOptions& opt, std::uint64_t row, std::uint64_t column, float v)
{
    throw Error(opt.path + ": /" + enum_name(opt.split) + "/images: row " + std::to_string(row) + ", column " +
                std::to_string(column) + " is " + non_finite_name(v) +
                ": float32 images must be finite (data/README.md)");
}

// Throws non_finite_image for the first NaN/Inf in rows [row0, row0 + rows) of F features.
void check_finite_rows(const LoaderOptions& opt, const float* x, std::uint64_t row0, std::uint64_t rows,
                       std::uint64_t F)
{
    // x: (rows, F)
    const std::size_t i = first_non_finite(x, rows * F);
    if (i < rows * F) non_finite_image(opt, row0 + i / F, i % F, x[i]);
}

// v.resize(n), with an error that names what the memory was for and how much was asked.
template <class T>
void allocate_host(std::vector<T>& v, std::size_t n, const std::string& what)
{
    try {
        v.resize(n);
    } catch (const std::bad_alloc&) {
        throw Error(what + ": cannot allocate " + bytes_text(static_cast<unsigned long long>(n) * sizeof(T)) +
                    " of host memory: out of memory");
    } catch (const std::length_error&) {
        throw Error(what + ": cannot allocate " + bytes_text(static_cast<unsigned long long>(n) * sizeof(T)) +
                    " of host memory: too large");
    }
}

// Reads a split's images, (N, F) as stored, into `out`, in blocks of whole chunks of about
// 16 MiB. A float32 block is checked for NaN/Inf right after its read, while it is still in
// cache: the check adds no second pass over main memory. Chunk-aligned blocks inflate each
// compressed chunk once, as one read of the whole split would.
void load_images(hid_t images, const LoaderOptions& opt, const SplitInfo& split, std::uint64_t F, std::size_t elem,
                 std::vector<unsigned char>& out)
{
    const std::uint64_t N = split.samples, row_bytes = F * elem;
    std::uint64_t block = std::max<std::uint64_t>(1, (std::uint64_t{16} << 20) / row_bytes);
    if (const std::uint64_t c = h5::chunk_rows(images); c > 0) block = (block + c - 1) / c * c;
    for (std::uint64_t r0 = 0; r0 < N; r0 += block) {
        const std::uint64_t n = std::min(block, N - r0);
        unsigned char* dst = out.data() + r0 * row_bytes;
        h5::read_rows(images, split.image_dtype, r0, n, dst);
        if (split.image_dtype == h5::Dtype::f32) check_finite_rows(opt, reinterpret_cast<const float*>(dst), r0, n, F);
    }
}

// Streaming: the images of the first and the last chunk of rows (1024 rows where the dataset is
// not chunked) into the content hash: a few reads, not the split (io/fingerprint.hpp). Through
// its own handle of the dataset, closed again.
void hash_edge_chunks(hid_t file, const std::string& name, const SplitInfo& split, std::uint64_t row_bytes,
                      ContentHash& hash)
{
    const h5::Handle images = h5::open_dataset(file, name);
    const std::uint64_t N = split.samples, c = h5::chunk_rows(images);
    const std::uint64_t rows = std::min<std::uint64_t>(N, c > 0 ? c : 1024);
    std::vector<unsigned char> buf(rows * row_bytes);
    for (const std::uint64_t r0 : {std::uint64_t{0}, N - rows}) {
        h5::read_rows(images, split.image_dtype, r0, rows, buf.data());
        hash.add(buf.data(), buf.size());
    }
}

// LoaderOptions::rows must be a strictly increasing, non-empty set of the split's rows.
void check_rows(const LoaderOptions& opt, std::uint64_t split_rows)
{
    for (std::size_t i = 0; i < opt.rows.size(); ++i)
        require(opt.rows[i] < split_rows && (i == 0 || opt.rows[i] > opt.rows[i - 1]),
                "loader: rows must increase and lie in the split's " + std::to_string(split_rows) + " rows");
}

enum class SlotState { free, filling, ready, in_use };

struct Slot {
    SlotState state = SlotState::free;
    std::int64_t step = -1;
    int rows = 0, global_rows = 0;
    std::exception_ptr error;
    DeviceBuffer<std::uint8_t> raw;      // (max_rows, F) uint8 images as stored (uint8 files only)
    DeviceBuffer<float> x;               // (max_rows, F) normalised images
    DeviceBuffer<std::int32_t> y;        // (max_rows)
    std::vector<unsigned char> host_x;   // (max_rows, F) gathered rows, stored dtype
    std::vector<std::int32_t> host_y;    // (max_rows)
    std::vector<unsigned char> sorted_x; // streaming: rows in file order before permuting
};

} // namespace

struct Loader::Impl {
    Backend& be;
    LoaderOptions opt;
    DatasetInfo info;
    const SplitInfo* split = nullptr;
    std::uint64_t samples = 0; // this loader's: the split's, or opt.rows'
    std::uint64_t features = 0;
    std::size_t elem = 1; // bytes per stored image element
    int max_rows = 0;
    std::int64_t steps = 0;

    std::vector<unsigned char> images; // in-memory: (N, F) as stored
    std::vector<std::int32_t> labels;  // (N), both modes
    std::uint64_t content_hash = 0;    // io/fingerprint.hpp: what this loader read of the split
    h5::Handle file, images_ds;        // streaming only (collective: opened by the first start_epoch)
    ReadPlan plan;

    std::vector<std::uint64_t> order; // this epoch's sample order
    Slot slots[2];

    std::mutex m;
    std::condition_variable cv;
    bool stop = false;
    std::thread reader;
    bool started = false;
    std::int64_t next_step = 0; // the step next() hands out next
    int in_use = -1;            // the slot handed out by the last next(); main thread only
    std::int64_t read_to = 0;   // the reader has filled this epoch's steps before this one
    bool paused = false;        // collective: another loader's turn stopped the reader (main thread only)
    // In memory with host kernels, next() gathers its batch itself: the kernels' OpenMP team
    // has every core, so a reader thread would run in a core's time slice, stalling that
    // thread's share of a gemm while the team waits for it at the region's end, and the batch
    // would reach the team from another core's cache.
    const bool inline_reads;

    Impl(Backend& b, const LoaderOptions& o) : be(b), opt(o), inline_reads(!o.streaming && !b.on_gpu()) {}

    ~Impl()
    {
        stop_reader();
        if (plan.collective) leave_collective();
    }

    // Stops the reader after the reads it was asked for (see the top of this file).
    void stop_reader()
    {
        {
            std::lock_guard<std::mutex> lk(m);
            stop = true;
        }
        cv.notify_all();
        if (reader.joinable()) reader.join();
        stop = false;
    }

    // Starts the reader at step `from` of the current epoch.
    void start_reader(std::int64_t from)
    {
        if (plan.collective) take_turn();
        paused = false;
        if (inline_reads) return; // next() fills each slot as it hands it out
        reader = std::thread(&Impl::run_reader, this, from, omp_get_default_device());
    }

    // ---- collective loaders: one reader at a time per process (loader.hpp) ----

    static std::mutex& collective_mutex()
    {
        static std::mutex mx;
        return mx;
    }
    static std::vector<Impl*>& collective_loaders() // guarded by collective_mutex()
    {
        static std::vector<Impl*> v;
        return v;
    }

    // Pauses every other collective loader's reader; the caller holds collective_mutex().
    void pause_others()
    {
        for (Impl* other : collective_loaders()) {
            if (other == this || !other->reader.joinable()) continue;
            other->stop_reader();
            other->paused = true;
        }
    }

    // Makes this loader's reader the one that runs, opening its file on first use.
    void take_turn()
    {
        std::lock_guard<std::mutex> lk(collective_mutex());
        pause_others();
        if (file.valid()) return;
        file = h5::open_read_mpio(opt.path, opt.comm);
        images_ds = h5::open_dataset_cached(file, std::string(enum_name(opt.split)) + "/images", kChunkCacheBytes);
    }

    void join_collective()
    {
        std::lock_guard<std::mutex> lk(collective_mutex());
        collective_loaders().push_back(this);
    }

    // Closes the file (collective) with the other readers paused; while an exception unwinds,
    // leaves it to MPI_Finalize instead (loader.hpp).
    void leave_collective()
    {
        std::lock_guard<std::mutex> lk(collective_mutex());
        auto& all = collective_loaders();
        all.erase(std::remove(all.begin(), all.end(), this), all.end());
        if (std::uncaught_exceptions() > 0) {
            h5::close_at_mpi_finalize(images_ds);
            h5::close_at_mpi_finalize(file);
            return;
        }
        if (file.valid()) pause_others();
        images_ds.reset();
        file.reset();
    }

    // ---- a subset of the split (LoaderOptions::rows) ----

    // The file row of sample i of this loader.
    std::uint64_t file_row(std::uint64_t i) const { return opt.rows.empty() ? i : opt.rows[i]; }

    // Keeps only opt.rows of the labels and, in memory, of the images, in place (the rows
    // increase, so each moves down or stays).
    void keep_rows()
    {
        const std::size_t row_bytes = features * elem;
        for (std::size_t i = 0; i < opt.rows.size(); ++i) {
            labels[i] = labels[opt.rows[i]];
            if (!images.empty())
                std::memmove(images.data() + i * row_bytes, images.data() + opt.rows[i] * row_bytes, row_bytes);
        }
        labels.resize(opt.rows.size());
        labels.shrink_to_fit();
        if (!images.empty()) {
            images.resize(opt.rows.size() * row_bytes);
            images.shrink_to_fit();
        }
    }

    // ---- the reader ----

    // Gathers step s's rows for this rank into slot.host_* and uploads them.
    void fill(Slot& slot, std::int64_t s)
    {
        const std::uint64_t first = static_cast<std::uint64_t>(s) * static_cast<std::uint64_t>(opt.global_batch);
        const int global_rows = static_cast<int>(std::min<std::uint64_t>(opt.global_batch, samples - first));
        const RowSlice sl = rank_slice(global_rows, opt.rank, opt.nranks);
        const int rows = sl.end - sl.begin;
        slot.step = s;
        slot.rows = rows;
        slot.global_rows = global_rows;
        {
            const trace::Span span("read", trace::host, -1, static_cast<std::int64_t>(rows * features * elem));
            if (opt.streaming)
                read_rows(slot, first + static_cast<std::uint64_t>(sl.begin), rows, s);
            else
                copy_rows(slot, first + static_cast<std::uint64_t>(sl.begin), rows);
        }
        if (rows == 0) return;
        // A host span: waiting for the device from this thread would wait for the training's kernels.
        const trace::Span span("upload", trace::host, -1, static_cast<std::int64_t>(rows * (features * elem + 4)));
        if (split->image_dtype == h5::Dtype::u8)
            slot.raw.upload(slot.host_x.data(), rows * features);
        else
            slot.x.upload(reinterpret_cast<const float*>(slot.host_x.data()), rows * features);
        slot.y.upload(slot.host_y.data(), rows);
    }

    // In memory: rows order[pos, pos + rows) into the slot.
    void copy_rows(Slot& slot, std::uint64_t pos, int rows)
    {
        const std::size_t row_bytes = features * elem;
        for (int r = 0; r < rows; ++r) {
            const std::uint64_t i = order[pos + r];
            std::memcpy(slot.host_x.data() + r * row_bytes, images.data() + i * row_bytes, row_bytes);
            slot.host_y[r] = labels[i];
        }
    }

    // Streaming: rows order[pos, pos + rows) from the file into the slot. They are sorted so
    // that they are read as runs in file order (each chunk visited once, in order), then each
    // row is put back at its place in the batch. A collective read joins with no rows too.
    void read_rows(Slot& slot, std::uint64_t pos, int rows, std::int64_t s)
    {
        if (rows == 0 && !plan.collective) return;
        std::vector<std::pair<std::uint64_t, int>> want(rows); // (file row, batch position)
        for (int r = 0; r < rows; ++r) {
            want[r] = {file_row(order[pos + r]), r};
            slot.host_y[r] = labels[order[pos + r]];
        }
        std::sort(want.begin(), want.end());
        std::vector<std::uint64_t> file_rows(rows);
        for (int r = 0; r < rows; ++r) file_rows[r] = want[r].first;
        try {
            if (plan.collective)
                h5::read_row_set_collective(images_ds, split->image_dtype, file_rows, slot.sorted_x.data());
            else
                h5::read_row_set(images_ds, split->image_dtype, file_rows, slot.sorted_x.data());
        } catch (const Error& e) { // the message names the file, dataset and rows
            throw Error(std::string(e.what()) + " (reading step " + std::to_string(s) + " of the epoch)");
        }
        const std::size_t row_bytes = features * elem;
        const bool check = split->image_dtype == h5::Dtype::f32; // uint8 cannot hold NaN/Inf
        for (int r = 0; r < rows; ++r) {
            const unsigned char* src = slot.sorted_x.data() + r * row_bytes;
            // Checked as it is copied (the row is in cache): streamed data is checked once per read.
            if (check) check_finite_rows(opt, reinterpret_cast<const float*>(src), want[r].first, 1, features);
            std::memcpy(slot.host_x.data() + want[r].second * row_bytes, src, row_bytes);
        }
    }

    // Inline reads: the caller's thread fills the slot of step s, as the reader would have.
    void fill_inline(Slot& slot, std::int64_t s)
    {
        slot.error = nullptr;
        try {
            fill(slot, s);
        } catch (...) {
            slot.error = std::current_exception();
        }
        slot.step = s;
        slot.state = SlotState::ready;
        read_to = s + 1;
    }

    void run_reader(std::int64_t first_step, int device)
    {
        omp_set_default_device(device); // a per-thread setting: use the caller's device
        trace::name_thread(std::string("loader ") + enum_name(opt.split));
        for (std::int64_t s = first_step; s < steps; ++s) {
            Slot& slot = slots[s % 2];
            {
                std::unique_lock<std::mutex> lk(m);
                cv.wait(lk, [&] { return stop || slot.state == SlotState::free; });
                if (slot.state != SlotState::free) return; // stopped; a free slot is filled first
                slot.state = SlotState::filling;
            }
            std::exception_ptr err;
            try {
                fill(slot, s);
            } catch (...) {
                err = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lk(m);
                slot.error = err;
                slot.step = s;
                slot.state = SlotState::ready;
                read_to = s + 1;
            }
            cv.notify_all();
            if (err) return;
        }
    }
};

Loader::Loader(Backend& be, const LoaderOptions& opt) : impl_(std::make_unique<Impl>(be, opt))
{
    Impl& I = *impl_;
    require(opt.global_batch >= 1, "loader: batch size must be >= 1, got " + std::to_string(opt.global_batch));
    require(opt.nranks >= 1 && opt.rank >= 0 && opt.rank < opt.nranks,
            "loader: rank " + std::to_string(opt.rank) + " of " + std::to_string(opt.nranks) + " is out of range");
    I.info = inspect_dataset(opt.path);
    I.split = &I.info.split(opt.split);
    I.features = I.info.features;
    I.elem = I.split->image_dtype == h5::Dtype::u8 ? 1 : 4;
    I.max_rows = (opt.global_batch + opt.nranks - 1) / opt.nranks;
    I.samples = opt.rows.empty() ? I.split->samples : opt.rows.size();
    check_rows(opt, I.split->samples);
    I.steps = static_cast<std::int64_t>((I.samples + opt.global_batch - 1) / opt.global_batch);

    const std::string g = enum_name(opt.split);
    {
        std::lock_guard<std::recursive_mutex> guard(h5::lock());
        I.file = h5::open_read(opt.path);
        allocate_host(I.labels, I.split->samples, opt.path + ": /" + g + "/labels");
        const h5::Handle lds = h5::open_dataset(I.file, g + "/labels");
        h5::read_rows(lds, h5::Dtype::i32, 0, I.split->samples, I.labels.data());
        ContentHash hash;
        hash.add(I.labels.data(), I.labels.size() * sizeof(std::int32_t));
        // Before the streaming handle opens: HDF5 shares one chunk cache among a dataset's open
        // handles, and the chunks read here must not be in it.
        if (opt.streaming) hash_edge_chunks(I.file, g + "/images", *I.split, I.features * I.elem, hash);
        I.images_ds = opt.streaming ? h5::open_dataset_cached(I.file, g + "/images", kChunkCacheBytes)
                                    : h5::open_dataset(I.file, g + "/images");
        I.plan = plan_reads(opt, I.images_ds);
        if (!opt.streaming) {
            allocate_host(I.images, I.split->samples * I.features * I.elem,
                          opt.path + ": /" + g +
                              "/images (the whole split in memory; --streaming reads batches instead)");
            load_images(I.images_ds, opt, *I.split, I.features, I.elem, I.images);
            hash.add(I.images.data(), I.images.size());
        }
        I.content_hash = hash.value();
        if (!opt.rows.empty()) I.keep_rows();
        if (!opt.streaming || I.plan.collective) { // collective: the first start_epoch opens it with MPI-IO
            I.images_ds.reset();
            I.file.reset();
        }
    }
    if (I.plan.collective) I.join_collective();

    const std::size_t n = static_cast<std::size_t>(I.max_rows) * I.features;
    const MemorySpace& mem = be.memory();
    const std::string batches = opt.path + ": /" + g + ": batches of " + std::to_string(I.max_rows) + " rows";
    for (Slot& s : I.slots) {
        try {
            if (I.split->image_dtype == h5::Dtype::u8) s.raw = DeviceBuffer<std::uint8_t>(mem, n);
            s.x = DeviceBuffer<float>(mem, n);
            s.y = DeviceBuffer<std::int32_t>(mem, static_cast<std::size_t>(I.max_rows));
        } catch (const std::exception& e) { // Error from the device, or bad_alloc on the host
            const std::size_t bytes = n * (sizeof(float) + (I.split->image_dtype == h5::Dtype::u8 ? 1 : 0)) +
                static_cast<std::size_t>(I.max_rows) * sizeof(std::int32_t);
            throw Error(batches + ": cannot allocate " + bytes_text(2 * bytes) + " of " + mem.name() +
                        " memory for two batches: " + e.what());
        }
        allocate_host(s.host_x, n * I.elem, batches);
        allocate_host(s.host_y, static_cast<std::size_t>(I.max_rows), batches);
        if (opt.streaming) allocate_host(s.sorted_x, n * I.elem, batches);
    }
}

Loader::~Loader() = default; // Impl's destructor stops and joins the reader

const DatasetInfo& Loader::dataset() const { return impl_->info; }
std::uint64_t Loader::samples() const { return impl_->samples; }
std::int64_t Loader::steps_per_epoch() const { return impl_->steps; }
std::uint64_t Loader::features() const { return impl_->features; }
int Loader::max_rows() const { return impl_->max_rows; }
const std::string& Loader::read_mode() const { return impl_->plan.mode; }
std::uint64_t Loader::content_hash() const { return impl_->content_hash; }

void Loader::start_epoch(std::int64_t epoch, std::int64_t first_step)
{
    Impl& I = *impl_;
    require(epoch >= 0, "loader: epoch must be >= 0, got " + std::to_string(epoch));
    require(first_step >= 0 && first_step <= I.steps,
            "loader: step " + std::to_string(first_step) + " is outside the epoch's " + std::to_string(I.steps) +
                " steps");
    I.stop_reader();
    I.be.synchronize(); // kernels may still read the batch handed out last
    for (Slot& s : I.slots) {
        s.state = SlotState::free;
        s.step = -1;
        s.error = nullptr;
    }
    if (I.opt.shuffle) {
        I.order = epoch_order(I.samples, I.opt.seed, epoch);
    } else if (I.order.size() != I.samples) {
        I.order.resize(I.samples);
        std::iota(I.order.begin(), I.order.end(), std::uint64_t{0});
    }
    I.next_step = first_step;
    I.in_use = -1;
    I.read_to = first_step;
    I.started = true;
    I.start_reader(first_step);
}

bool Loader::next(DeviceBatch& out)
{
    Impl& I = *impl_;
    if (!I.started) start_epoch(0, 0);
    if (I.in_use >= 0) {
        I.be.synchronize();
        {
            std::lock_guard<std::mutex> lk(I.m);
            I.slots[I.in_use].state = SlotState::free;
        }
        I.in_use = -1;
        I.cv.notify_all();
    }
    if (I.next_step >= I.steps) return false;
    if (I.paused && I.read_to < I.steps) I.start_reader(I.read_to); // another collective loader had its turn

    const std::int64_t s = I.next_step;
    Slot& slot = I.slots[s % 2];
    if (I.inline_reads) I.fill_inline(slot, s);
    {
        std::unique_lock<std::mutex> lk(I.m);
        I.cv.wait(lk, [&] { return slot.state == SlotState::ready && slot.step == s; });
        if (slot.error) {
            const std::exception_ptr err = slot.error;
            slot.error = nullptr;
            slot.state = SlotState::free;
            I.next_step = I.steps; // the epoch cannot go on
            std::rethrow_exception(err);
        }
        slot.state = SlotState::in_use;
    }
    I.in_use = static_cast<int>(s % 2);
    ++I.next_step;
    if (slot.rows > 0 && I.split->image_dtype == h5::Dtype::u8) {
        const trace::Span span("normalize", trace::device);
        I.be.normalize_u8(static_cast<std::size_t>(slot.rows) * I.features, slot.raw.data(), slot.x.data(),
                          1.0f / 255.0f, 0.0f);
    }
    out.rows = slot.rows;
    out.global_rows = slot.global_rows;
    out.step_in_epoch = s;
    out.x = slot.x.data();
    out.y = slot.y.data();
    return true;
}

} // namespace ompml
