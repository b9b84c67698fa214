// GradSumPlan (see grad_sum.hpp): the transport decision, made once, and the factory.
#include "parallel/grad_sum.hpp"

#include "core/check.hpp"
#include "core/trace.hpp"
#include "parallel/blocking_sum.hpp"
#include "parallel/comm.hpp"
#include "parallel/hier_sum.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/mpi_exchange.hpp"
#include "parallel/mpi_sum.hpp"
#include "parallel/node_layout.hpp"
#include "parallel/node_memory.hpp"
#include "parallel/node_sum.hpp"
#include "parallel/staged_sum.hpp"

#include <string>
#include <utility>

namespace ompml {

namespace {

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

// The fp32 MPI sum where the options leave it open (MpiFp32Sum::automatic, no fixed_order):
// MPI_Iallreduce, ~1.5 ms per step faster than the exchange at 5.8M parameters on 2 ranks, though
// 2x slower per step at 20M (measured, mpi_exchange.hpp).
constexpr MpiFp32Sum kMpiFp32Default = MpiFp32Sum::allreduce;

// Whether a CUDA-aware MPI may read this fp32 device gradient itself.
bool mpi_reads_device(const MemorySpace& mem, const GradSumOptions& opt)
{
    return !opt.force_staging && &mem != &host_memory() && opt.gpu_memory && mpi_cuda_aware();
}

// allreduce or exchange, the same on every rank (the options and the build are).
MpiFp32Sum resolve_fp32(const MemorySpace& mem, const GradSumOptions& opt, int ranks)
{
    require(!opt.fixed_order || opt.mpi_fp32 != MpiFp32Sum::allreduce,
            "the MPI fp32 sum 'allreduce' cannot give the fixed summation order asked for: MPI_Iallreduce adds in "
            "an order of MPI's choosing (use the exchange, or auto)");
    if (opt.mpi_fp32 != MpiFp32Sum::automatic) return opt.mpi_fp32;
    if (opt.fixed_order) return MpiFp32Sum::exchange;
    // A CUDA-aware MPI reads the device gradient itself; the exchange's owner sums run on the host
    // and would stage it. Not measured on a GPU: keep MPI_Iallreduce there.
    if (ranks > 1 && mpi_reads_device(mem, opt)) return MpiFp32Sum::allreduce;
    return kMpiFp32Default;
}

// Whether MPI may be handed the gradient itself: host memory, or fp32 CUDA memory with a
// CUDA-aware MPI for MPI_Iallreduce. The exchanges' owner sums (bf16, and the fp32 exchange) run
// on the host, so their device memory is staged.
template <class G>
bool mpi_reads(const MemorySpace& mem, const GradSumOptions& opt, MpiFp32Sum fp32)
{
    if (opt.force_staging) return false;
    if (&mem == &host_memory()) return true; // also omp memory in builds without offload
    return std::is_same_v<G, float> && fp32 == MpiFp32Sum::allreduce && mpi_reads_device(mem, opt);
}

} // namespace

// --- the plan ---------------------------------------------------------------------------------

GradSumPlan::GradSumPlan(MPI_Comm comm, const MemorySpace& mem, GradSumOptions opt)
    : comm_(comm), mem_(mem), opt_(std::move(opt)), size_(comm_size(comm))
{
    fp32_ = resolve_fp32(mem_, opt_, size_);
    if (size_ == 1 || opt_.transport == GradTransport::mpi) return;
    // The same answer on every rank: the build decides the memory, the layout is collective.
    layout_ = std::make_unique<NodeLayout>(comm_, opt_.fake_node_ranks);
    std::string why; // why the transport asked for is not possible here
    if (&mem_ != &host_memory()) why = std::string("the gradient is in ") + mem_.name() + " memory, not host memory";
    const bool one_node = layout_->nodes() == 1;
    const bool keeps_order = !opt_.fixed_order || layout_->composes_split_tree();
    const std::string order_why = layout_->shape() +
        " cannot give the fixed summation order (it needs every node's ranks consecutive and the same "
        "power-of-two count on every node)";
    switch (opt_.transport) {
    case GradTransport::shared:
        if (why.empty() && !one_node) why = "the ranks are not all on one node";
        require(why.empty(), "gradient transport shm is not possible here: " + why + " (use auto or mpi)");
        node_ = std::make_unique<NodeMemory>(comm_);
        break;
    case GradTransport::hier:
        if (why.empty() && !keeps_order) why = order_why;
        require(why.empty(), "gradient transport hier is not possible here: " + why + " (use auto or mpi)");
        hier_ = true;
        break;
    default: // auto: shm on one node, hier on several where a node holds several ranks, else mpi
        if (!why.empty()) break;
        if (one_node) {
            node_ = std::make_unique<NodeMemory>(comm_);
        } else if (layout_->shared_nodes()) {
            hier_ = keeps_order;
            if (!keeps_order) note_ = "auto: not hierarchical, " + order_why + "; the flat MPI exchange keeps it";
        }
    }
    if (hier_) node_ = std::make_unique<NodeMemory>(layout_->node_comm());
}

GradSumPlan::~GradSumPlan() = default;

const MemorySpace& GradSumPlan::gradient_memory() const { return node_ ? *node_ : mem_; }

template <class G>
std::unique_ptr<GradientSum<G>> GradSumPlan::make(G* grad, std::size_t n) const
{
    if (size_ == 1) return std::make_unique<NoSum<G>>(n);
    if (node_) {
        // Every rank's buffer, found through the window; an error on every rank if this one's
        // gradient is not in the window (the constructor below is collective).
        std::vector<void*> peers;
        collective_try(comm_, [&] { peers = node_->peers(grad, n * sizeof(G)); });
        std::vector<G*> bufs;
        for (void* p : peers) bufs.push_back(static_cast<G*>(p));
        if (hier_) return make_hier<G>(std::move(bufs), n);
        return std::make_unique<NodeSum<G>>(*node_, std::move(bufs), n);
    }
    // MPI on the gradient itself, or on the host mirror of Staged (which copies back per bucket).
    const bool direct = mpi_reads<G>(mem_, opt_, fp32_);
    const bool allreduce = std::is_same_v<G, float> && fp32_ == MpiFp32Sum::allreduce;
    const auto mpi = [&](G* buf, BucketDone done) -> std::unique_ptr<GradientSum<G>> {
        if constexpr (std::is_same_v<G, float>)
            if (allreduce)
                return std::make_unique<MpiSum>(comm_, buf, n, opt_.bucket_mb, direct && &mem_ != &host_memory(),
                                                std::move(done));
        return std::make_unique<MpiExchange<G>>(comm_, buf, n, opt_.bucket_mb, std::move(done));
    };
    if (direct) return mpi(grad, {});
    return std::make_unique<Staged<G>>(mem_, grad, n, opt_, allreduce ? MpiSum::kName : MpiExchange<G>::kName, mpi);
}

template <class G>
std::unique_ptr<GradientSum<G>> GradSumPlan::make_hier(std::vector<G*> bufs, std::size_t n) const
{
    // Between the leaders: the partial sums are float whatever G. The fixed-order exchange unless
    // --mpi-fp32-sum allreduce asks for MPI_Iallreduce (fp32 only; never with fixed_order): the
    // leaders move the whole gradient in few, large buckets, where Open MPI's allreduce is slow
    // (measured on the local cluster, docs/results/scaling.md "Several nodes"; mpi_exchange.hpp),
    // and the exchange keeps the two-level order fixed.
    const bool allreduce = std::is_same_v<G, float> && opt_.mpi_fp32 == MpiFp32Sum::allreduce;
    const int nodes = layout_->nodes();
    const MPI_Comm leaders = layout_->leader_comm();
    const double bucket_mb = opt_.bucket_mb;
    const std::string inter = nodes == 1
        ? std::string("nothing")
        : std::string(allreduce ? MpiSum::kName : MpiExchange<float>::kName) + " on host memory";
    const auto make_inter = [&](float* partial) -> std::unique_ptr<GradientSum<float>> {
        if (nodes == 1) return std::make_unique<NoSum<float>>(n);
        if (allreduce) return std::make_unique<MpiSum>(leaders, partial, n, bucket_mb, false);
        return std::make_unique<MpiExchange<float>>(leaders, partial, n, bucket_mb);
    };
    return std::make_unique<HierSum<G>>(*node_, std::move(bufs), n, nodes, inter, make_inter);
}

bool GradSumPlan::fp32_fixed_order() const
{
    if (size_ == 1) return true;
    if (hier_) return layout_->composes_split_tree() && opt_.mpi_fp32 != MpiFp32Sum::allreduce;
    return node_ != nullptr || fp32_ == MpiFp32Sum::exchange;
}

const char* GradSumPlan::chosen() const
{
    if (size_ == 1) return "none";
    return hier_ ? "hier" : node_ ? "shm" : "mpi";
}

template std::unique_ptr<GradientSum<float>> GradSumPlan::make<float>(float*, std::size_t) const;
template std::unique_ptr<GradientSum<bf16>> GradSumPlan::make<bf16>(bf16*, std::size_t) const;

std::unique_ptr<GradientSum<float>> GradSumPlan::make_blocking_allreduce(float* grad, std::size_t n) const
{
    require(!opt_.fixed_order || size_ == 1,
            "one blocking MPI_Allreduce cannot give the fixed summation order asked for: it adds in an order of "
            "MPI's choosing");
    // The shared-memory window is host memory too: MPI reads it directly.
    return std::make_unique<BlockingAllreduce>(comm_, size_, gradient_memory(), grad, n,
                                               &gradient_memory() != &host_memory() && !node_);
}

} // namespace ompml
