// GradientAverager: sums the ONE flat gradient buffer over all ranks, in buckets that start
// while the backward pass is still running.
//
// Each rank's gradient is already scaled by 1/global_batch (the loss is a sum over the rank's
// slice of the global batch divided by the global batch size), so the SUM over ranks is the
// mean over the global batch: averaging is by global sample count, whatever the rank count.
//
//   GradientAverager avg(mpi.comm(), be.memory(), model.num_params(), {.gpu_memory = be.on_gpu()});
//   model.use_grad_buffer(avg.data());        // backward writes the averager's buffer
//   model.use_grad16_buffer(avg.data16());    // and its bf16 one (--grad-dtype bf16; else null)
//   for (layer = L-1 .. 0) {                  // backward pass, last layer first
//       backward(layer);                      // writes dW, db of this layer (final now)
//       avg.bucket_ready(layer.grad_offset, layer.grad_count);  // device work must be done
//   }
//   avg.finish();                             // grads (bf16: data16()) now hold the global sums
//   optimizer_step();
//
// Buckets: ranges marked ready that are adjacent (the usual reverse layer order) collect into
// one pending range; once it holds bucket_mb it goes out as one MPI_Iallreduce, so buckets are
// whole layers and never one call per tensor. finish() reduces what remains with one blocking
// MPI_Allreduce (nothing is left to overlap with), waits for the rest, and copies each reduced
// bucket back to the device. Every element must be marked exactly once per step.
//
// Transport, chosen once at construction (GradTransport):
//   shared memory: when the averager owns the buffer (the constructor without a pointer), every
//     rank is on one node and the gradient is host memory, the buffers live in one MPI shared
//     window and the ranks sum them with loads and stores (NodeSum, parallel/node_sum.hpp): no
//     messages, no copies; ranges are summed as soon as every rank has marked them.
//   MPI: buckets of MPI_Iallreduce. MPI reads the buffer itself when it is host memory, or CUDA
//     memory with a CUDA-aware MPI; otherwise (and always with force_staging) buckets go
//     through a page-aligned host copy.
// With 1 rank no MPI call is made at all.
//
// Compressed gradients (GradSyncOptions::dtype = bf16, --grad-dtype bf16, several ranks): the
// ranks exchange bf16 and accumulate in fp32, so half the bytes go between them. The gradient
// is bf16 end to end: backward writes it in bf16 (data16(); the dW gemm's epilogue writes the
// weight gradients in bf16 only, Mlp::use_grad16_buffer), the sum arrives in data16() and the
// optimizer reads it there; data() is then only backward's float scratch (the bias gradients
// before their conversion). Every element of the sum is
//     bf16( (..((float(b_0) + float(b_1)) + float(b_2)) ..) + float(b_{P-1}) ),  b_r = bf16(g_r)
// (round to nearest even, core/bf16.hpp; the sum in float, in rank order 0..P-1): bitwise the
// same on all ranks and whatever the bucket boundaries, since each element's value depends only
// on the P inputs, never on where a bucket cut it.
//   MPI: each bucket is cut into P chunks (c = ceil(n/P) elements, the last one shorter); rank
//     q owns chunk q. An MPI_Ialltoallv straight from the bf16 gradient (started in
//     bucket_ready like the fp32 buckets, moved on by the same MPI_Testsome) hands every rank
//     the P-1 other copies of its chunk; the owner sums them and its own in float in rank
//     order and stores the bf16-rounded sum over its own chunk; an MPI_Iallgatherv in place
//     then gives every rank the rest of the bucket. Each rank sends (P-1)c bf16 twice:
//     (P-1)/P x n x 2 x 2 bytes, against 2 (P-1)/P x n x 4 for the fp32 ring allreduce: half,
//     and the owner's sum is the only pass over memory besides MPI's. The allgathers go on a duplicate
//     communicator in bucket order (a rank starts bucket k's only after bucket k-1's), because
//     the ranks see the alltoalls complete in different orders and MPI matches collectives on
//     one communicator by the order they are started. Why not MPI_Iallreduce on bf16 with a
//     user-defined MPI_Op: the reduction tree would round to bf16 at every step (log P or P-1
//     roundings, in an order MPI chooses), which is not "accumulate in fp32", and user ops
//     often disable MPI's tuned algorithms. A bf16 gradient in device memory is staged (half
//     the bytes of fp32 each way), since the owner's sum runs on the host.
//   shared memory: NodeSum with the bf16 buffers in the window (node_sum.hpp): backward writes
//     its bf16 gradient straight into the window.
// With 1 rank nothing is exchanged: data16() is null and the gradient stays float, so a 1-rank
// run is bitwise the fp32 run. The local sums count as communication time (mpi_s).
//
// Determinism: with the same bucket layout every rank gets bitwise the same sums (Open MPI's
// reduction algorithms give all ranks one result; NodeSum sums each element once, in rank
// order). The order of the sum differs from a 1-rank run, so rank-count independence holds to
// float rounding (relative differences ~1e-6). With bf16, a run on P ranks differs from a
// 1-rank run by bf16 rounding instead (each term and the sum: relative 2^-8 ~ 4e-3 per element
// per step); a 1-rank run makes no exchange, so its gradient stays fp32.
#pragma once

#include "core/bf16.hpp"
#include "core/buffer.hpp"
#include "core/enum_names.hpp"
#include "core/memory.hpp"
#include "core/precision.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ompml {

class NodeSum;

// How the ranks sum the gradient (--grad-transport auto|mpi|shm).
enum class GradTransport {
    automatic, // shared memory where possible (see above), MPI otherwise
    mpi,       // MPI_Iallreduce buckets always
    shared,    // shared memory; an error where it is not possible
};
template <>
struct EnumNames<GradTransport> {
    static constexpr const char* what = "gradient transport";
    static constexpr std::pair<GradTransport, const char*> names[] = {
        {GradTransport::automatic, "auto"}, {GradTransport::mpi, "mpi"}, {GradTransport::shared, "shm"}};
};

struct GradSyncOptions {
    GradTransport transport = GradTransport::automatic;
    double bucket_mb = 4.0;            // send a bucket once this many MB are ready; <= 0: one bucket in finish()
    bool force_staging = false;        // copy through host memory even where MPI could read the buffer
    bool gpu_memory = false;           // the buffer is CUDA device memory (cuda backend, omp on an NVIDIA GPU)
    Precision dtype = Precision::fp32; // what the ranks exchange: bf16 halves the bytes, sums in fp32
    // Optional page-locking of the staging buffer (e.g. cudaHostRegister / cudaHostUnregister
    // from the CUDA backend): pinned memory makes the staging copies DMA at full speed.
    std::function<void(void*, std::size_t)> pin_host;
    std::function<void(void*)> unpin_host;
};

// Time of one step (or the sum over steps), for the scaling study.
struct GradSyncStats {
    int steps = 0;
    // MPI buckets (fp32: MPI_Iallreduce; bf16: alltoall + allgather), or ranges summed
    // through shared memory
    int buckets = 0;
    // bytes of gradient this rank put into the sum, in the exchanged type: n x 4 (fp32), n x 2 (bf16)
    std::size_t bytes = 0;
    // wall time in the sum: MPI calls (starts, progress tests, waits) or shared-memory sums and
    // waits; bf16: the owner's local sums too
    double mpi_s = 0;
    double wait_s = 0; // the exposed part: the time of mpi_s spent in finish() after backward is done
    double copy_s = 0; // staging copies device <-> host
    void add(const GradSyncStats& o);
};

// Whether MPI may be handed the buffer itself (no staging), for these options and memory.
bool grad_sync_direct(const MemorySpace& mem, const GradSyncOptions& opt);

class GradientAverager {
public:
    // Collective. The averager owns the gradient buffer: n floats, zeroed, in a shared window
    // (shared-memory transport) or in mem (MPI). Backward writes into data(). With bf16 on
    // several ranks the window holds the bf16 buffer (data16()) and the floats are in mem.
    GradientAverager(MPI_Comm comm, const MemorySpace& mem, std::size_t n, GradSyncOptions opt = {});
    // Collective. The caller's buffer (n floats in mem, outliving the averager): MPI transport
    // only (GradTransport::shared is an error).
    GradientAverager(MPI_Comm comm, const MemorySpace& mem, float* grad, std::size_t n, GradSyncOptions opt = {});
    ~GradientAverager();
    GradientAverager(const GradientAverager&) = delete;
    GradientAverager& operator=(const GradientAverager&) = delete;

    // Elements [offset, offset + count) are final on the device (after backend.synchronize()
    // where kernels are queued asynchronously). Starts a bucket when enough is pending.
    void bucket_ready(std::size_t offset, std::size_t count);
    // Sends what is pending, waits for every bucket and leaves the sums in the device buffer.
    // Throws Error (after the wait, so no request is left behind) if some elements were not
    // marked ready this step.
    void finish();
    // The whole buffer at once, no overlap: bucket_ready(0, n) + finish().
    void allreduce();

    float* data() { return grad_; } // (n) the gradient buffer, device
    // (n) the bf16 gradient, device, with dtype bf16 on several ranks (null otherwise): backward
    // writes it, and after finish() it holds the sum (data() does not).
    bf16* data16() { return grad16_; }
    int ranks() const { return size_; }
    bool shared_memory() const { return node_ != nullptr; }
    bool staged() const { return size_ > 1 && !direct_; }
    std::string transport() const; // for the run's log
    std::size_t bucket_elems() const { return bucket_elems_; }
    const GradSyncStats& last_step() const { return last_; }
    const GradSyncStats& total() const { return total_; }

private:
    // A bf16 bucket's stages (fp32 buckets stay in `exchanging` until done).
    enum class Stage { exchanging, summing, gathering, done };
    struct Bucket {
        std::size_t off, n;
        std::uint64_t trace_id; // its async span "bucket" (in flight) in a trace
        Stage stage = Stage::exchanging;
        std::size_t c = 0;     // bf16: elements per chunk, ceil(n / P)
        bool blocking = false; // bf16: the last range, by blocking calls in finish()
    };
    bool bf16_mpi() const { return opt_.dtype == Precision::bf16 && !node_; }
    void init_mpi(); // bucket size and staging buffer for the MPI transport
    void launch(std::size_t off, std::size_t n);
    void launch_bf16(std::size_t off, std::size_t n, bool blocking);
    void advance_gathers();           // bf16: sum and start the allgathers that are due, in bucket order
    void sum_owned(const Bucket& b);  // bf16: this rank's chunk, summed over the ranks in fp32
    void gathered(Bucket& b);         // bf16: the bucket is summed everywhere (copied back when staged)
    bf16* wire_data(const Bucket& b); // bf16: the bucket where MPI reads and writes it
    void flush_pending();
    void reduce_pending_blocking();
    void complete(int index); // bucket `index` is reduced: copy it back when staged
    void progress();          // lets MPI advance the reductions in flight (no progress thread)
    void wait_all();

    MPI_Comm comm_;
    const MemorySpace& mem_;
    float* grad_ = nullptr; // (n) device pointer: the caller's, own_'s or node_'s
    std::size_t n_;
    GradSyncOptions opt_;
    DeviceBuffer<float> own_;       // the owned float buffer (MPI, and shared memory with bf16)
    DeviceBuffer<bf16> own16_;      // bf16 on several ranks with MPI: the bf16 gradient
    bf16* grad16_ = nullptr;        // (n) device: own16_'s or node_'s; null unless bf16 on several ranks
    std::unique_ptr<NodeSum> node_; // the shared-memory transport
    int size_ = 1;
    bool direct_ = true;
    std::size_t bucket_elems_ = 0;
    float* host_ = nullptr;  // (n) page-aligned staging copy, when staged (fp32)
    bf16* host16_ = nullptr; // (n) the same for bf16
    // bf16: the duplicate communicator of the allgathers, and per bucket of a step the received
    // copies of this rank's chunk and the MPI counts, kept from step to step (same layout).
    struct Wire {
        std::vector<bf16> recv;          // (P, c): rank r's values of this rank's chunk at r c
        std::vector<int> counts, displs; // chunk q: its length and q c (the allgather's)
        std::vector<int> send_counts;    // counts, 0 for this rank (the alltoall's)
        std::vector<int> recv_counts;    // this rank's chunk length from every other rank, 0 from itself
    };
    MPI_Comm gather_comm_ = MPI_COMM_NULL;
    int rank_ = 0;
    std::vector<Wire> wire_;
    std::size_t next_gather_ = 0; // the first bucket whose allgather is not started yet

    std::vector<Bucket> buckets_;                             // launched this step
    std::vector<MPI_Request> requests_;                       // one per bucket; MPI_REQUEST_NULL once done
    std::vector<std::pair<std::size_t, std::size_t>> marked_; // ranges marked this step
    std::size_t marked_total_ = 0;
    std::size_t pend_lo_ = 0, pend_hi_ = 0; // the pending (ready, not yet sent) range
    GradSyncStats cur_, last_, total_;
};

} // namespace ompml
