// uint8 -> float normalisation as a CUDA kernel: one thread per element (grid-stride).
#include "kernels/cuda_common.cuh"
#include "kernels/normalize.hpp"

namespace ompml {
namespace {

__global__ void normalize_u8_kernel(std::size_t n, const std::uint8_t* __restrict__ X, float* __restrict__ Y,
                                    float scale, float shift)
{
    // X: (n) bytes, Y: (n)
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        Y[i] = static_cast<float>(X[i]) * scale + shift;
}

} // namespace

template <>
void normalize_u8<Impl::cuda>(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift)
{
    normalize_u8_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(n, X, Y, scale, shift);
    CUDA_CHECK_LAUNCH();
}

} // namespace ompml
