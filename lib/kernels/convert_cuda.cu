// float <-> bf16 as CUDA kernels: one thread per element (grid-stride).
#include "kernels/convert.hpp"
#include "kernels/cuda_common.cuh"

namespace ompml {
namespace {

template <class From, class To>
__global__ void convert_kernel(std::size_t n, const From* __restrict__ X, To* __restrict__ Y)
{
    // X: (n), Y: (n)
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        Y[i] = from_float<To>(to_float(X[i]));
}

} // namespace

template <>
void convert<Impl::cuda>(std::size_t n, const float* X, bf16* Y)
{
    convert_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(n, X, Y);
    CUDA_CHECK_LAUNCH();
}

template <>
void convert<Impl::cuda>(std::size_t n, const bf16* X, float* Y)
{
    convert_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(n, X, Y);
    CUDA_CHECK_LAUNCH();
}

} // namespace ompml
