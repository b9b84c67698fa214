// GradientSum<G>: the seam between a training step and the ranks' gradient transport. The model
// owns its gradient, one flat buffer of element type G (float, or bf16 with --grad-dtype bf16 on
// several ranks) for its whole life; a transport is built over that buffer (a pointer and a
// length) and told, layer by layer during backward, which ranges are final (ready), so it can
// start summing them while the rest of backward runs; finish() completes the sum. After
// finish() every rank's buffer holds the same sum over ranks. Each rank's gradient is already
// scaled by 1/global_batch, so the sum is the mean over the global batch, whatever the rank
// count.
//
// The transports (MPI buckets, MPI staged through host memory, the node's shared memory, ...)
// live in lib/parallel (grad_sum.hpp), one class each; this layer needs none of them. NoSum is
// the 1-rank one.
#pragma once

#include "core/bf16.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ompml {

// Time of one step (or the sum over steps), for the scaling study.
struct GradSyncStats {
    int steps = 0;
    // MPI buckets (fp32: MPI_Iallreduce or the exchange; bf16: the exchange), or ranges summed
    // through shared memory
    int buckets = 0;
    // bytes of gradient this rank put into the sum, in the exchanged type: n x 4 (fp32), n x 2 (bf16)
    std::size_t bytes = 0;
    // wall time in the sum: MPI calls (starts, progress tests, waits) or shared-memory sums and
    // waits; bf16: the owner's local sums too
    double mpi_s = 0;
    double wait_s = 0; // the exposed part: the time of mpi_s spent in finish() after backward is done
    double copy_s = 0; // staging copies device <-> host
    // the hierarchical sum's phases (hier): included in mpi_s; 0 for the other transports
    double node_s = 0;  // the node's ranks summing into the node's partial sum, and waiting for ranges
    double inter_s = 0; // the node leader's MPI sum between nodes (0 on the other ranks)
    double share_s = 0; // waiting for the leader's result and copying it into this rank's gradient
    void add(const GradSyncStats& o);
};

// What every transport shares, written once: the statistics, and the per-step check that every
// element of the view is marked exactly once.
class GradSumSteps {
public:
    virtual ~GradSumSteps() = default;
    const GradSyncStats& last_step() const { return last_; }
    const GradSyncStats& total() const { return total_; }

protected:
    explicit GradSumSteps(std::size_t n) : n_(n) {}
    // ready()'s checks: [off, off + n) lies inside the view and overlaps no range marked this
    // step (Error otherwise). False for an empty range: nothing to do.
    bool mark(std::size_t off, std::size_t n);
    // finish()'s frame: the "grad sum" span (args.bytes span_bytes) around sum(), whose MPI time
    // (cur_.mpi_s) is the exposed wait; the "grad bytes" counter; then end_step().
    void finish_step(std::int64_t span_bytes, const std::function<void()>& sum);
    // Closes the step: cur_ into last_step() and total(), the marks cleared; then throws Error
    // if fewer than n elements were marked.
    void end_step();

    const std::size_t n_; // elements in the view
    GradSyncStats cur_;   // the step in progress

private:
    std::vector<std::pair<std::size_t, std::size_t>> marked_; // ranges marked this step
    std::size_t marked_total_ = 0;
    GradSyncStats last_, total_;
};

// Sums ONE flat gradient of element type G over the ranks of a communicator, bucket by bucket,
// started while backward runs. G = float: each element ends as the sum over ranks; G = bf16:
// bf16(sum in float, in the split tree over rank index (core/split_tree.hpp), of the bf16 values).
template <class G>
class GradientSum : public GradSumSteps {
    static_assert(std::is_same_v<G, float> || std::is_same_v<G, bf16>, "gradients are float or bf16");

public:
    // Elements [off, off + n) of the gradient view are final on this rank (the caller has
    // synchronized device work). Starts a bucket where enough is pending. Throws Error for a
    // range outside the view or overlapping a range marked this step.
    virtual void ready(std::size_t off, std::size_t n) = 0;
    // Sends what is pending and waits for every bucket: the whole view holds the sum, bitwise
    // the same on every rank. Throws Error (after waiting: nothing is left in flight) when some
    // elements were not marked this step.
    virtual void finish() = 0;
    virtual std::string describe() const = 0; // for the run's log ("MPI on host memory", ...)
    virtual const char* kind() const = 0;     // "none" (1 rank), "shm", "mpi" or "hier"

protected:
    explicit GradientSum(std::size_t n) : GradSumSteps(n) {}
    // The end of describe() for this element type.
    static constexpr const char* dtype_text = std::is_same_v<G, bf16> ? ", bf16 exchanged, fp32 sums" : "";
};

// 1 rank: the sum is the gradient itself. No MPI call; the marks are still checked, so a model
// that forgets a layer fails on 1 rank as it would on many.
template <class G>
class NoSum final : public GradientSum<G> {
public:
    explicit NoSum(std::size_t n) : GradientSum<G>(n) {}
    void ready(std::size_t off, std::size_t n) override { this->mark(off, n); }
    void finish() override
    {
        this->finish_step(0, [] {});
    }
    std::string describe() const override { return "none (1 rank)"; }
    const char* kind() const override { return "none"; }
};

} // namespace ompml
