// MpiComm: the trainer's Comm seam (lib/nn/trainer.hpp) over MPI, for data-parallel training.
//
//   grad_ready(layer)  -> GradientAverager::bucket_ready: backward hands layers over in
//                         reverse order, so the last layers' buckets are on the wire while
//                         the first layers' gradients are still being computed
//   finish_grads()     -> GradientAverager::finish: wait; the flat gradient is the SUM over
//                         ranks, i.e. the global batch mean (each rank scaled by 1/global_rows)
//   sum(v, n), any(b)  -> one MPI_Allreduce of n doubles (loss sums, counts) / of the stop flag
//
// It also keeps the time split the scaling study needs: communication (time inside MPI calls
// and staging copies of the gradient sum, GradSyncStats) against the rest of the step.
#pragma once

#include "nn/trainer.hpp"
#include "parallel/comm.hpp"
#include "parallel/grad_sync.hpp"

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

namespace ompml {

// The seam without gradients: rank, size, sums and the stop flag over MPI (evaluation, and
// the base of MpiComm).
class MpiReduceComm : public Comm {
public:
    explicit MpiReduceComm(MPI_Comm comm);
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    void sum(double* v, int n) override; // one MPI_Allreduce of n doubles
    bool any(bool local) override;       // one MPI_Allreduce of an int

protected:
    MPI_Comm comm_;

private:
    int rank_ = 0, size_ = 1;
};

class MpiComm final : public MpiReduceComm {
public:
    // Collective. Owns the flat gradient buffer (n floats, device; see GradientAverager):
    // point the model at it with model.use_grad_buffer(comm.grads()).
    MpiComm(MPI_Comm comm, Backend& be, std::size_t n, const GradSyncOptions& opt);

    float* grads() { return G_; } // (n) device
    // (n) device: the bf16 gradient with --grad-dtype bf16 on several ranks, null otherwise;
    // point the model at it with model.use_grad16_buffer(comm.grads16()) (the sum arrives there).
    bf16* grads16() { return avg_->data16(); }
    void grad_ready(Backend& be, float* G, const LayerView& view) override;
    void finish_grads(Backend& be, float* G, std::size_t n) override;

    const GradientAverager& averager() const { return *avg_; }
    // Seconds of gradient communication so far: MPI calls (starts, progress, waits) plus the
    // staging copies. The rest of a step's time is compute (forward, backward, optimizer).
    double comm_seconds() const;

private:
    float* G_;
    std::size_t n_;
    std::unique_ptr<GradientAverager> avg_;
};

// The alternative the scaling study compares the averager with: no overlap, one blocking
// MPI_Allreduce of the whole gradient after backward, staged through host memory when the
// gradient is not in host memory.
class BlockingAllreduceComm final : public MpiReduceComm {
public:
    BlockingAllreduceComm(MPI_Comm comm, const MemorySpace& mem, std::size_t n);
    void finish_grads(Backend& be, float* G, std::size_t n) override;
    double last_seconds() const { return last_s_; } // the last sum (copies included)

private:
    std::vector<float> stage_; // (n) host copy; empty when the gradient is in host memory
    double last_s_ = 0.0;
};

} // namespace ompml
