// MpiSum: the fp32 gradient summed over ranks by MPI_Iallreduce buckets on the buffer itself
// (host memory, or CUDA memory with a CUDA-aware MPI; a staging mirror otherwise: staged_sum.hpp).
//
// Buckets (pending_range.hpp): adjacent ready ranges grow one pending range; once it holds
// bucket_mb it goes out as one MPI_Iallreduce in place. Open MPI has no progress thread by
// default: a non-blocking reduction advances only while this rank is inside some MPI call, so
// ready() gives the reductions a cheap MPI_Testsome after every range, and they move while the
// backward pass goes on. finish() reduces what remains with one blocking MPI_Allreduce (nothing
// is left to overlap with; measured 2-3x faster than MPI_Iallreduce + wait on Open MPI 4.1
// without a progress thread), issued in the same order on every rank, then waits for the rest.
//
// Determinism: Open MPI's reduction algorithms give every rank the same result for the same
// count, so with the same bucket layout (one model, one layout) all ranks hold bitwise the same
// sums, run after run. The order of the additions is MPI's (it depends on the count, P and the
// algorithm MPI picks): another bucket size or rank count may change the bits. Where they must
// not (GradSumOptions::fixed_order), the plan takes MpiExchange<float> instead.
#pragma once

#include "parallel/grad_sum.hpp"
#include "parallel/pending_range.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

class MpiSum final : public GradientSum<float> {
public:
    static constexpr const char* kName = "MPI_Iallreduce"; // describe()'s, before where

    // buf: (n) floats MPI reads and writes (the gradient, or its host mirror); device_memory:
    // buf is CUDA memory (a CUDA-aware MPI reads it). done: called for every bucket once its sum
    // is in buf (may be empty). Makes no MPI call.
    MpiSum(MPI_Comm comm, float* buf, std::size_t n, double bucket_mb, bool device_memory, BucketDone done = {});
    ~MpiSum() override;
    MpiSum(const MpiSum&) = delete;
    MpiSum& operator=(const MpiSum&) = delete;

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return "mpi"; }

private:
    struct Bucket {
        std::size_t off, n;
        std::uint64_t trace_id; // its async span "bucket" (in flight) in a trace
    };
    void launch(std::size_t off, std::size_t n);          // one MPI_Iallreduce
    void reduce_blocking(std::size_t off, std::size_t n); // the last range, in finish()
    void complete(int index);                             // bucket `index` is reduced
    void progress();                                      // lets MPI advance the reductions in flight
    void wait_all();

    MPI_Comm comm_;
    float* buf_; // (n)
    bool device_memory_;
    BucketDone done_;
    PendingRange pending_;
    std::vector<Bucket> buckets_;       // launched this step
    std::vector<MPI_Request> requests_; // one per bucket; MPI_REQUEST_NULL once done
};

} // namespace ompml
