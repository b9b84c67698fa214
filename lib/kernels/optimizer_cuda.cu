// Optimizer updates as CUDA kernels: one thread per parameter (grid-stride), per-element
// bodies shared with every backend (sgd_body, adam_body); Adam's bias corrections are
// computed once on the host, as in the other backends.
#include "kernels/cuda_common.cuh"
#include "kernels/optimizer.hpp"

namespace ompml {
namespace {

// T: the gradient's type, float or bf16; COPY: whether W16 is written; DECOUPLED: AdamW (both
// decided once per call, decide_once).
template <bool COPY, class T>
__global__ void sgd_update_kernel(std::size_t n, SgdStep s, float* __restrict__ W, const T* __restrict__ G,
                                  float* __restrict__ M, bf16* __restrict__ W16)
{
    // W, G, M, W16: (n)
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        sgd_body(s, W[i], to_float(G[i]), M[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <bool DECOUPLED, bool COPY, class T>
__global__ void adam_update_kernel(std::size_t n, AdamStep s, float c1, float c2, float* __restrict__ W,
                                   const T* __restrict__ G, float* __restrict__ M, float* __restrict__ V,
                                   bf16* __restrict__ W16)
{
    // W, G, M, V, W16: (n)
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        adam_body<DECOUPLED>(s, c1, c2, W[i], to_float(G[i]), M[i], V[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <class T>
void sgd_cuda(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16)
{
    decide_once(W16 != nullptr, [&](auto copy) {
        sgd_update_kernel<decltype(copy)::value><<<cuda::grid_for(n), cuda::kBlock>>>(n, s, W, G, M, W16);
    });
    CUDA_CHECK_LAUNCH();
}

template <class T>
void adam_cuda(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16)
{
    const AdamCorrection c = adam_correction(s);
    decide_adam(s, W16, [&](auto dec, auto copy) {
        adam_update_kernel<decltype(dec)::value, decltype(copy)::value>
            <<<cuda::grid_for(n), cuda::kBlock>>>(n, s, c.c1, c.c2, W, G, M, V, W16);
    });
    CUDA_CHECK_LAUNCH();
}

} // namespace

template <>
void sgd_update<Impl::cuda>(std::size_t n, const SgdStep& s, float* W, const float* G, float* M, bf16* W16)
{
    sgd_cuda(n, s, W, G, M, W16);
}

template <>
void sgd_update<Impl::cuda>(std::size_t n, const SgdStep& s, float* W, const bf16* G, float* M, bf16* W16)
{
    sgd_cuda(n, s, W, G, M, W16);
}

template <>
void adam_update<Impl::cuda>(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V, bf16* W16)
{
    adam_cuda(n, s, W, G, M, V, W16);
}

template <>
void adam_update<Impl::cuda>(std::size_t n, const AdamStep& s, float* W, const bf16* G, float* M, float* V, bf16* W16)
{
    adam_cuda(n, s, W, G, M, V, W16);
}

} // namespace ompml
