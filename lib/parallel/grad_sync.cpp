// GradientAverager (see grad_sync.hpp): bucketed, non-blocking sums of the flat gradient.
// Open MPI has no progress thread by default: a non-blocking reduction advances only while
// this rank is inside some MPI call, so bucket_ready() gives it a cheap MPI_Testsome after
// each bucket it starts, and the reductions move while the backward pass goes on.
#include "parallel/grad_sync.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"
#include "parallel/comm.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/node_sum.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <vector>

namespace ompml {
namespace {

constexpr std::size_t kMaxCount = std::size_t{1} << 30; // MPI counts are int
constexpr std::size_t kPage = 4096;                     // staging buffer alignment (DMA-friendly)

std::size_t wire_bytes(Precision dtype) { return dtype == Precision::bf16 ? sizeof(bf16) : sizeof(float); }

} // namespace

void GradSyncStats::add(const GradSyncStats& o)
{
    steps += o.steps;
    buckets += o.buckets;
    bytes += o.bytes;
    mpi_s += o.mpi_s;
    wait_s += o.wait_s;
    copy_s += o.copy_s;
}

bool grad_sync_direct(const MemorySpace& mem, const GradSyncOptions& opt)
{
    if (opt.force_staging) return false;
    if (&mem == &host_memory()) return true; // also omp memory in builds without offload
    // bf16 is summed on the host, after the staging copy.
    return opt.dtype == Precision::fp32 && opt.gpu_memory && mpi_cuda_aware();
}

namespace {

int comm_size(MPI_Comm comm)
{
    int init = 0, fin = 0, size = 1;
    // Allowed at any time and never failing (unchecked, as in comm.cpp's mpi_running).
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init != 0 && fin == 0) MPI_CHECK(MPI_Comm_size(comm, &size));
    return size;
}

} // namespace

GradientAverager::GradientAverager(MPI_Comm comm, const MemorySpace& mem, std::size_t n, GradSyncOptions opt)
    : comm_(comm), mem_(mem), n_(n), opt_(std::move(opt)), size_(comm_size(comm))
{
    if (size_ > 1 && opt_.transport != GradTransport::mpi) {
        // The same answer on every rank: the build decides the memory, possible() is collective.
        std::string why;
        if (&mem_ != &host_memory())
            why = std::string("the gradient is in ") + mem_.name() + " memory, not host memory";
        else if (!NodeSum::possible(comm_))
            why = "the ranks are not all on one node";
        require(why.empty() || opt_.transport != GradTransport::shared,
                "gradient transport shm is not possible here: " + why + " (use auto or mpi)");
        if (why.empty()) {
            node_ = std::make_unique<NodeSum>(comm_, n_, opt_.dtype);
            if (opt_.dtype == Precision::fp32) {
                grad_ = node_->data();
                return;
            }
            grad16_ = node_->data16(); // backward writes its bf16 gradient into the window
        }
    }
    own_ = DeviceBuffer<float>(mem_, n_);
    if (n_ > 0) mem_.to_device(own_.data(), std::vector<float>(n_, 0.0f).data(), n_ * sizeof(float));
    grad_ = own_.data();
    if (!node_) init_mpi();
}

GradientAverager::GradientAverager(MPI_Comm comm, const MemorySpace& mem, float* grad, std::size_t n,
                                   GradSyncOptions opt)
    : comm_(comm), mem_(mem), grad_(grad), n_(n), opt_(std::move(opt)), size_(comm_size(comm))
{
    require(opt_.transport != GradTransport::shared,
            "gradient transport shm needs the averager's own buffer (GradientAverager without a pointer)");
    init_mpi();
}

void GradientAverager::init_mpi()
{
    direct_ = grad_sync_direct(mem_, opt_);
    bucket_elems_ = opt_.bucket_mb > 0
        ? std::max<std::size_t>(1, static_cast<std::size_t>(opt_.bucket_mb * 1048576.0 / sizeof(float)))
        : std::numeric_limits<std::size_t>::max();
    const bool half = size_ > 1 && opt_.dtype == Precision::bf16;
    if (half) {
        own16_ = DeviceBuffer<bf16>(mem_, n_);
        if (n_ > 0) mem_.to_device(own16_.data(), std::vector<bf16>(n_, bf16{0}).data(), n_ * sizeof(bf16));
        grad16_ = own16_.data();
        MPI_CHECK(MPI_Comm_dup(comm_, &gather_comm_));
        MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    }
    if (staged() && n_ > 0) {
        // Page-aligned so a pin_host hook (cudaHostRegister) can lock whole pages; pageable
        // otherwise, which costs copy speed, not correctness.
        const std::size_t bytes = (n_ * wire_bytes(opt_.dtype) + kPage - 1) / kPage * kPage;
        void* p = std::aligned_alloc(kPage, bytes);
        require(p != nullptr, "GradientAverager: staging allocation of " + std::to_string(bytes) + " bytes failed");
        if (opt_.pin_host) opt_.pin_host(p, bytes);
        if (half)
            host16_ = static_cast<bf16*>(p);
        else
            host_ = static_cast<float*>(p);
    }
}

GradientAverager::~GradientAverager()
{
    const bool in_flight =
        std::any_of(requests_.begin(), requests_.end(), [](MPI_Request r) { return r != MPI_REQUEST_NULL; });
    if (in_flight) {
        // Unwinding from an error on this rank: the other ranks may never join these
        // reductions, so waiting could hang; the job is ending (abort_all or a collective
        // error), so leave the staging memory to MPI rather than free it under a live request.
        if (std::uncaught_exceptions() > 0) return;
        MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    }
    if (gather_comm_ != MPI_COMM_NULL && std::uncaught_exceptions() == 0) MPI_CHECK(MPI_Comm_free(&gather_comm_));
    for (void* p : {static_cast<void*>(host_), static_cast<void*>(host16_)}) {
        if (p == nullptr) continue;
        if (opt_.unpin_host) opt_.unpin_host(p);
        std::free(p);
    }
}

std::string GradientAverager::transport() const
{
    if (size_ == 1) return "none (1 rank)";
    const std::string dtype = opt_.dtype == Precision::bf16 ? ", bf16 exchanged, fp32 sums" : "";
    if (node_) return "shared memory (one node, " + std::to_string(size_) + " ranks)" + dtype;
    if (direct_) return (&mem_ == &host_memory() ? "MPI on host memory" : "MPI on device memory (CUDA-aware)") + dtype;
    return std::string("staged through ") + (opt_.pin_host ? "pinned" : "pageable") + " host memory" + dtype;
}

void GradientAverager::bucket_ready(std::size_t offset, std::size_t count)
{
    require(offset <= n_ && count <= n_ - offset,
            "GradientAverager::bucket_ready: range [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                ") exceeds the gradient's " + std::to_string(n_) + " elements");
    if (count == 0) return;
    for (const auto& [lo, hi] : marked_)
        require(offset >= hi || offset + count <= lo,
                "GradientAverager::bucket_ready: range [" + std::to_string(offset) + ", " +
                    std::to_string(offset + count) + ") overlaps [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    ") marked earlier this step");
    marked_.emplace_back(offset, offset + count);
    marked_total_ += count;
    if (size_ == 1) return; // the sum over one rank is the buffer itself
    if (node_) {
        const Stopwatch t;
        node_->ready(offset, count);
        cur_.mpi_s += t.seconds();
        ++cur_.buckets;
        cur_.bytes += count * wire_bytes(opt_.dtype);
        return;
    }

    // Adjacent ranges (reverse layer order extends the pending range downwards) grow one
    // bucket; anything else closes the pending bucket first.
    if (pend_hi_ == pend_lo_) {
        pend_lo_ = offset;
        pend_hi_ = offset + count;
    } else if (offset + count == pend_lo_) {
        pend_lo_ = offset;
    } else if (offset == pend_hi_) {
        pend_hi_ += count;
    } else {
        flush_pending();
        pend_lo_ = offset;
        pend_hi_ = offset + count;
    }
    if (pend_hi_ - pend_lo_ >= bucket_elems_) flush_pending();
    progress();
}

void GradientAverager::flush_pending()
{
    for (std::size_t off = pend_lo_; off < pend_hi_; off += kMaxCount) {
        const std::size_t n = std::min(kMaxCount, pend_hi_ - off);
        if (bf16_mpi())
            launch_bf16(off, n, false);
        else
            launch(off, n);
    }
    pend_lo_ = pend_hi_ = 0;
}

// The last range (the first layers' gradients) has nothing left to overlap with: a blocking
// MPI_Allreduce reduces it faster than MPI_Iallreduce + wait (measured 2-3x on Open MPI 4.1
// without a progress thread), and it is issued in the same order on every rank.
void GradientAverager::reduce_pending_blocking()
{
    if (bf16_mpi()) { // the same with bf16: blocking alltoall now, blocking allgather in its turn
        for (std::size_t off = pend_lo_; off < pend_hi_; off += kMaxCount)
            launch_bf16(off, std::min(kMaxCount, pend_hi_ - off), true);
        pend_lo_ = pend_hi_ = 0;
        return;
    }
    for (std::size_t off = pend_lo_; off < pend_hi_; off += kMaxCount) {
        const std::size_t n = std::min(kMaxCount, pend_hi_ - off);
        float* buf = direct_ ? grad_ + off : host_ + off; // (n)
        Stopwatch copy;
        if (!direct_) mem_.to_host(buf, grad_ + off, n * sizeof(float));
        cur_.copy_s += copy.seconds();
        Stopwatch t;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_));
        cur_.mpi_s += t.seconds();
        copy.restart();
        if (!direct_) mem_.to_device(grad_ + off, buf, n * sizeof(float));
        cur_.copy_s += copy.seconds();
        ++cur_.buckets;
        cur_.bytes += n * sizeof(float);
    }
    pend_lo_ = pend_hi_ = 0;
}

void GradientAverager::launch(std::size_t off, std::size_t n)
{
    const trace::Span span("grad bucket", trace::host, -1, static_cast<std::int64_t>(n * sizeof(float)));
    float* buf = grad_ + off; // (n)
    if (!direct_) {
        Stopwatch copy;
        mem_.to_host(host_ + off, grad_ + off, n * sizeof(float));
        cur_.copy_s += copy.seconds();
        buf = host_ + off;
    }
    MPI_Request req = MPI_REQUEST_NULL;
    Stopwatch t;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_, &req));
    cur_.mpi_s += t.seconds();
    buckets_.push_back({off, n, trace::next_id()});
    trace::async_begin("bucket", buckets_.back().trace_id, static_cast<std::int64_t>(n * sizeof(float)));
    requests_.push_back(req);
    ++cur_.buckets;
    cur_.bytes += n * sizeof(float);
}

void GradientAverager::complete(int index)
{
    Bucket& b = buckets_[static_cast<std::size_t>(index)];
    if (bf16_mpi()) {
        if (b.stage == Stage::exchanging) { // its allgather starts in advance_gathers, in order
            b.stage = Stage::summing;
            return;
        }
        gathered(b);
        return;
    }
    trace::async_end("bucket", b.trace_id);
    if (direct_) return;
    Stopwatch copy;
    mem_.to_device(grad_ + b.off, host_ + b.off, b.n * sizeof(float));
    cur_.copy_s += copy.seconds();
}

void GradientAverager::progress()
{
    if (requests_.empty()) return;
    std::vector<int> done(requests_.size());
    int count = 0;
    Stopwatch t;
    MPI_CHECK(
        MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &count, done.data(), MPI_STATUSES_IGNORE));
    cur_.mpi_s += t.seconds();
    if (count != MPI_UNDEFINED) // else every request had already finished
        for (int i = 0; i < count; ++i) complete(done[static_cast<std::size_t>(i)]);
    if (bf16_mpi()) advance_gathers();
}

void GradientAverager::wait_all()
{
    for (;;) {
        if (bf16_mpi()) advance_gathers();
        int index = MPI_UNDEFINED;
        const Stopwatch t;
        MPI_CHECK(MPI_Waitany(static_cast<int>(requests_.size()), requests_.data(), &index, MPI_STATUS_IGNORE));
        cur_.mpi_s += t.seconds();
        if (index == MPI_UNDEFINED) break; // no active request left (bf16: every gather started, see above)
        complete(index);
    }
}

void GradientAverager::finish()
{
    // The rest of the sum and the wait for the buckets in flight: what backward did not hide.
    const trace::Span span("grad sum", trace::host, -1, size_ > 1 ? static_cast<std::int64_t>(n_ * sizeof(float)) : 0);
    const double mpi_before = cur_.mpi_s;
    if (node_) {
        const Stopwatch t;
        node_->finish();
        cur_.mpi_s += t.seconds();
    } else if (size_ > 1) {
        reduce_pending_blocking();
        if (!requests_.empty()) wait_all();
    }
    cur_.wait_s += cur_.mpi_s - mpi_before; // the sum's time spent after backward
    cur_.steps = 1;
    trace::counter("grad bytes", static_cast<double>(cur_.bytes));
    last_ = cur_;
    total_.add(cur_);
    cur_ = GradSyncStats{};
    buckets_.clear();
    requests_.clear();
    next_gather_ = 0;
    marked_.clear();
    const std::size_t marked = marked_total_;
    marked_total_ = 0;
    require(marked == n_,
            "GradientAverager::finish: only " + std::to_string(marked) + " of " + std::to_string(n_) +
                " gradient elements were marked ready this step");
}

void GradientAverager::allreduce()
{
    bucket_ready(0, n_);
    finish();
}

} // namespace ompml
