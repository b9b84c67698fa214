// Staged<G>: an MPI transport run on a host mirror of the gradient, where MPI may not read the
// gradient's memory: device memory without a CUDA-aware MPI (Debian's Open MPI is not), a bf16
// gradient in device memory (its owner's sums run on the host: mpi_exchange.hpp), or
// GradSumOptions::force_staging.
//
// ready() copies the range device -> mirror (the caller has synchronized device work) and hands
// it to the inner transport (MpiSum or MpiExchange<G> over the mirror). Each bucket is copied back
// mirror -> device as soon as the inner transport sees its sum complete (its BucketDone): buckets
// that finish during backward go back during backward, and only the last ones remain for
// finish(). The results are the inner transport's, bit for bit.
//
// The mirror is page-aligned so that a pin_host hook (cudaHostRegister) can lock whole pages;
// pageable otherwise, which costs copy speed, not correctness. Copies count as copy_s.
#pragma once

#include "parallel/grad_sum.hpp"
#include "parallel/pending_range.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace ompml {

template <class G>
class Staged final : public GradientSum<G> {
public:
    // The inner transport over the mirror (n elements of host memory), calling `done` per bucket.
    using MakeInner = std::function<std::unique_ptr<GradientSum<G>>(G* mirror, BucketDone done)>;

    // grad: (n) the gradient in mem. inner_name: the inner transport's name for describe()
    // (MpiSum::kName, MpiExchange<G>::kName). Collective where make_inner is.
    Staged(const MemorySpace& mem, G* grad, std::size_t n, const GradSumOptions& opt, std::string inner_name,
           const MakeInner& make_inner);
    ~Staged() override;
    Staged(const Staged&) = delete;
    Staged& operator=(const Staged&) = delete;

    void ready(std::size_t off, std::size_t n) override;
    void finish() override;
    std::string describe() const override;
    const char* kind() const override { return "mpi"; }

private:
    void copy_back(std::size_t off, std::size_t n); // a summed bucket, mirror -> device

    const MemorySpace& mem_;
    G* grad_;     // (n) device
    G* mirror_;   // (n) page-aligned host memory; null when n is 0
    bool pinned_; // pin_host was given
    std::string inner_name_;
    std::function<void(void*)> unpin_;
    std::unique_ptr<GradientSum<G>> inner_; // works on mirror_
};

extern template class Staged<float>;
extern template class Staged<bf16>;

} // namespace ompml
