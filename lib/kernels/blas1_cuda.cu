// Vector kernels in CUDA: fill one thread per element (grid-stride); sum_squares
// in two passes (per-block double partials, then one block sums them in a fixed order) so the
// result is bitwise reproducible, unlike atomics.
#include "kernels/blas1.hpp"
#include "kernels/cuda_common.cuh"

namespace ompml {
namespace {

template <class T> // float or bf16
__global__ void fill_kernel(std::size_t n, T* X, T value)
{
    // X: (n)
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        X[i] = value;
}

template <class T> // float or bf16
__global__ void sum_squares_kernel(std::size_t n, const T* __restrict__ X, double* part)
{
    // X: (n); part: (gridDim.x) partial sums
    double s = 0.0;
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const double x = to_float(X[i]);
        s += x * x;
    }
    s = cuda::block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

template <class T>
double sum_squares_cuda(std::size_t n, const T* X)
{
    const unsigned grid = cuda::reduce_grid_for(n);
    double* part = static_cast<double*>(cuda::scratch((grid + 1) * sizeof(double))); // (grid) partials, then the total
    sum_squares_kernel<<<grid, cuda::kBlock>>>(n, X, part);
    CUDA_CHECK_LAUNCH();
    cuda::sum_partials_kernel<<<1, 1024>>>(part, static_cast<int>(grid), part + grid);
    CUDA_CHECK_LAUNCH();
    double total = 0.0;
    CUDA_CHECK(cudaMemcpy(&total, part + grid, sizeof(double), cudaMemcpyDeviceToHost)); // waits for the kernels
    return total;
}

} // namespace

template <>
void fill<Impl::cuda>(std::size_t n, float* X, float value)
{
    fill_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(n, X, value);
    CUDA_CHECK_LAUNCH();
}
template <>
void fill<Impl::cuda>(std::size_t n, bf16* X, float value)
{
    fill_kernel<<<cuda::grid_for(n), cuda::kBlock>>>(n, X, to_bf16(value));
    CUDA_CHECK_LAUNCH();
}

template <>
double sum_squares<Impl::cuda>(std::size_t n, const float* X)
{
    return sum_squares_cuda(n, X);
}

template <>
double sum_squares<Impl::cuda>(std::size_t n, const bf16* X)
{
    return sum_squares_cuda(n, X);
}

} // namespace ompml
