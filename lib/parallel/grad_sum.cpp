// GradSumPlan (see grad_sum.hpp): the transport decision, made once, and the factory; the
// bookkeeping every transport shares (statistics, marks); and NoneSum, the 1-rank transport.
#include "parallel/grad_sum.hpp"

#include "core/check.hpp"
#include "core/trace.hpp"
#include "parallel/blocking_sum.hpp"
#include "parallel/comm.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/mpi_exchange.hpp"
#include "parallel/mpi_sum.hpp"
#include "parallel/node_memory.hpp"
#include "parallel/node_sum.hpp"
#include "parallel/staged_sum.hpp"

#include <string>
#include <utility>

namespace ompml {

void GradSyncStats::add(const GradSyncStats& o)
{
    steps += o.steps;
    buckets += o.buckets;
    bytes += o.bytes;
    mpi_s += o.mpi_s;
    wait_s += o.wait_s;
    copy_s += o.copy_s;
}

// --- what every transport shares --------------------------------------------------------------

bool GradSumSteps::mark(std::size_t off, std::size_t n)
{
    require(off <= n_ && n <= n_ - off,
            "GradientSum::ready: range [" + std::to_string(off) + ", " + std::to_string(off + n) +
                ") exceeds the gradient's " + std::to_string(n_) + " elements");
    if (n == 0) return false;
    for (const auto& [lo, hi] : marked_)
        require(off >= hi || off + n <= lo,
                "GradientSum::ready: range [" + std::to_string(off) + ", " + std::to_string(off + n) + ") overlaps [" +
                    std::to_string(lo) + ", " + std::to_string(hi) + ") marked earlier this step");
    marked_.emplace_back(off, off + n);
    marked_total_ += n;
    return true;
}

void GradSumSteps::finish_step(std::int64_t span_bytes, const std::function<void()>& sum)
{
    {
        // The rest of the sum and the wait for the buckets in flight: what backward did not hide.
        const trace::Span span("grad sum", trace::host, -1, span_bytes);
        const double mpi_before = cur_.mpi_s;
        sum();
        cur_.wait_s += cur_.mpi_s - mpi_before;
    }
    trace::counter("grad bytes", static_cast<double>(cur_.bytes));
    end_step();
}

void GradSumSteps::end_step()
{
    cur_.steps = 1;
    last_ = cur_;
    total_.add(cur_);
    cur_ = GradSyncStats{};
    marked_.clear();
    const std::size_t marked = marked_total_;
    marked_total_ = 0;
    require(marked == n_,
            "GradientSum::finish: only " + std::to_string(marked) + " of " + std::to_string(n_) +
                " gradient elements were marked ready this step");
}

namespace {

// 1 rank: the sum is the gradient itself. No MPI call; the marks are still checked, so a model
// that forgets a layer fails on 1 rank as it would on many.
template <class G>
class NoneSum final : public GradientSum<G> {
public:
    explicit NoneSum(std::size_t n) : GradientSum<G>(n) {}
    void ready(std::size_t off, std::size_t n) override { this->mark(off, n); }
    void finish() override
    {
        this->finish_step(0, [] {});
    }
    std::string describe() const override { return "none (1 rank)"; }
    const char* kind() const override { return "none"; }
};

// The ranks of comm, 1 where MPI is not running (allowed at any time and never failing, hence
// unchecked, as in comm.cpp's mpi_running).
int comm_size(MPI_Comm comm)
{
    int init = 0, fin = 0, size = 1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init != 0 && fin == 0) MPI_CHECK(MPI_Comm_size(comm, &size));
    return size;
}

// Whether MPI may be handed the gradient itself: host memory, or fp32 CUDA memory with a
// CUDA-aware MPI. bf16 is summed on the host (the owner's sums), so bf16 device memory is staged.
template <class G>
bool mpi_reads(const MemorySpace& mem, const GradSumOptions& opt)
{
    if (opt.force_staging) return false;
    if (&mem == &host_memory()) return true; // also omp memory in builds without offload
    return std::is_same_v<G, float> && opt.gpu_memory && mpi_cuda_aware();
}

} // namespace

// --- the plan ---------------------------------------------------------------------------------

GradSumPlan::GradSumPlan(MPI_Comm comm, const MemorySpace& mem, GradSumOptions opt)
    : comm_(comm), mem_(mem), opt_(std::move(opt)), size_(comm_size(comm))
{
    if (size_ == 1 || opt_.transport == GradTransport::mpi) return;
    // The same answer on every rank: the build decides the memory, on_one_node() is collective.
    std::string why;
    if (&mem_ != &host_memory())
        why = std::string("the gradient is in ") + mem_.name() + " memory, not host memory";
    else if (!on_one_node(comm_))
        why = "the ranks are not all on one node";
    require(why.empty() || opt_.transport != GradTransport::shared,
            "gradient transport shm is not possible here: " + why + " (use auto or mpi)");
    if (why.empty()) node_ = std::make_unique<NodeMemory>(comm_);
}

GradSumPlan::~GradSumPlan() = default;

const MemorySpace& GradSumPlan::gradient_memory() const { return node_ ? *node_ : mem_; }

template <class G>
std::unique_ptr<GradientSum<G>> GradSumPlan::make(G* grad, std::size_t n) const
{
    if (size_ == 1) return std::make_unique<NoneSum<G>>(n);
    if (node_) {
        // Every rank's buffer, found through the window; an error on every rank if this one's
        // gradient is not in the window (the constructor below is collective).
        std::vector<void*> peers;
        collective_try(comm_, [&] { peers = node_->peers(grad, n * sizeof(G)); });
        std::vector<G*> bufs;
        for (void* p : peers) bufs.push_back(static_cast<G*>(p));
        return std::make_unique<NodeSum<G>>(*node_, std::move(bufs), n);
    }
    // MPI on the gradient itself, or on the host mirror of Staged (which copies back per bucket).
    const bool direct = mpi_reads<G>(mem_, opt_);
    const auto mpi = [&](G* buf, BucketDone done) -> std::unique_ptr<GradientSum<G>> {
        if constexpr (std::is_same_v<G, float>)
            return std::make_unique<MpiSum>(comm_, buf, n, opt_.bucket_mb, direct && &mem_ != &host_memory(),
                                            std::move(done));
        else
            return std::make_unique<MpiExchange>(comm_, buf, n, opt_.bucket_mb, std::move(done));
    };
    if (direct) return mpi(grad, {});
    return std::make_unique<Staged<G>>(mem_, grad, n, opt_, mpi);
}

template std::unique_ptr<GradientSum<float>> GradSumPlan::make<float>(float*, std::size_t) const;
template std::unique_ptr<GradientSum<bf16>> GradSumPlan::make<bf16>(bf16*, std::size_t) const;

std::unique_ptr<GradientSum<float>> GradSumPlan::make_blocking_allreduce(float* grad, std::size_t n) const
{
    // The shared-memory window is host memory too: MPI reads it directly.
    return std::make_unique<BlockingAllreduce>(comm_, size_, gradient_memory(), grad, n,
                                               &gradient_memory() != &host_memory() && !node_);
}

} // namespace ompml
