// Row/column reductions in CUDA.
// col_sum: a block of 32 columns x 16 row groups; each thread sums a strided set of rows
//          (reads coalesced along the row), then one thread per column adds the 16 partials
//          in a fixed order.
// row_max, row_sum: one warp per row, lanes stride the columns, shuffle tree to finish.
#include "kernels/cuda_common.cuh"
#include "kernels/reduce.hpp"

#include <cmath>

namespace ompml {
namespace {

constexpr int kColTile = 32;   // columns per block (one warp wide: coalesced row reads)
constexpr int kRowGroups = 16; // row groups per block
constexpr int kRowsPerBlock = cuda::kBlock / 32; // warps per block = rows per block (row_*)

__global__ void col_sum_kernel(int rows, int cols, const float* __restrict__ X, float* out, float beta)
{
    // X: (rows, cols), out: (cols)
    __shared__ float part[kRowGroups][kColTile + 1];
    const int c = blockIdx.x * kColTile + threadIdx.x;
    float s = 0.0f;
    if (c < cols)
        for (int r = threadIdx.y; r < rows; r += kRowGroups) s += X[static_cast<long>(r) * cols + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float total = 0.0f;
        for (int g = 0; g < kRowGroups; ++g) total += part[g][threadIdx.x];
        out[c] = (beta == 0.0f ? 0.0f : beta * out[c]) + total; // beta 0 overwrites, even NaN
    }
}

template <bool kMax>
__global__ void row_reduce_kernel(int rows, int cols, const float* __restrict__ X, float* out)
{
    // X: (rows, cols), out: (rows)
    const int lane = threadIdx.x & 31;
    for (int r = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5); r < rows; r += gridDim.x * kRowsPerBlock) {
        const float* x = X + static_cast<long>(r) * cols; // (cols)
        float v = kMax ? -INFINITY : 0.0f;
        for (int c = lane; c < cols; c += 32) v = kMax ? fmaxf(v, x[c]) : v + x[c];
        v = kMax ? cuda::warp_max(v) : cuda::warp_sum(v);
        if (lane == 0) out[r] = v;
    }
}

unsigned row_grid(int rows)
{
    return static_cast<unsigned>(std::min(65535, (rows + kRowsPerBlock - 1) / kRowsPerBlock));
}

} // namespace

template <>
void col_sum<Impl::cuda>(int rows, int cols, const float* X, float* out, float beta)
{
    const dim3 block(kColTile, kRowGroups);
    col_sum_kernel<<<(cols + kColTile - 1) / kColTile, block>>>(rows, cols, X, out, beta);
    CUDA_CHECK_LAUNCH();
}

template <>
void row_max<Impl::cuda>(int rows, int cols, const float* X, float* out)
{
    row_reduce_kernel<true><<<row_grid(rows), cuda::kBlock>>>(rows, cols, X, out);
    CUDA_CHECK_LAUNCH();
}

template <>
void row_sum<Impl::cuda>(int rows, int cols, const float* X, float* out)
{
    row_reduce_kernel<false><<<row_grid(rows), cuda::kBlock>>>(rows, cols, X, out);
    CUDA_CHECK_LAUNCH();
}

} // namespace ompml
