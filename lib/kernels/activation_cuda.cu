// activation backward as a CUDA kernel: one thread per element (grid-stride), body shared
// with every backend through act_backward_elem.
#include "kernels/activation.hpp"
#include "kernels/cuda_common.cuh"

namespace ompml {
namespace {

__global__ void activation_backward_kernel(Act act, std::size_t n, const float* Z, const float* dY, float* dX)
{
    // Z, dY, dX: (n); dX may alias dY, so no __restrict__
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        dX[i] = act_backward_elem(act, Z[i], dY[i]);
}

} // namespace

template <>
void activation_backward<Impl::cuda>(Act act, std::size_t n, const float* Z, const float* dY, float* dX)
{
    activation_backward_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(act, n, Z, dY, dX);
    CUDA_CHECK_LAUNCH();
}

} // namespace ompml
