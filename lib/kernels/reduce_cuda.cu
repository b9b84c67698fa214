// The column sum in CUDA: a block of 32 columns x 16 row groups; each thread sums a strided set
// of rows (reads coalesced along the row), then one thread per column adds the 16 partials in a
// fixed order.
#include "kernels/cuda_common.cuh"
#include "kernels/reduce.hpp"

namespace ompml {
namespace {

constexpr int kColTile = 32;   // columns per block (one warp wide: coalesced row reads)
constexpr int kRowGroups = 16; // row groups per block

template <class O>
__global__ void col_sum_kernel(int rows, int cols, const float* __restrict__ X, O* out)
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
        out[c] = from_float<O>(total);
    }
}

// With rows in chunks (kc): one thread per column, each chunk's rows in order, the chunks' sums
// into a TreeSum (the mode's point is the order; a bias gradient is small).
template <class O>
__global__ void col_sum_chunked_kernel(int cols, const float* __restrict__ X, O* out, KChunks kc)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    TreeSum<float> t;
    for (int ch = 0; ch < kc.count; ++ch) {
        float s = 0.0f;
        for (long r = chunk_row(kc, ch); r < chunk_row(kc, ch + 1); ++r) s += X[r * cols + c];
        t.add(s);
    }
    out[c] = from_float<O>(t.total());
}

template <class O>
void col_sum_cuda(int rows, int cols, const float* X, O* out, const KChunks& kc)
{
    if (kc.chunks > 0) {
        col_sum_chunked_kernel<<<(cols + cuda::kBlock - 1) / cuda::kBlock, cuda::kBlock>>>(cols, X, out, kc);
    } else {
        const dim3 block(kColTile, kRowGroups);
        col_sum_kernel<<<(cols + kColTile - 1) / kColTile, block>>>(rows, cols, X, out);
    }
    CUDA_CHECK_LAUNCH();
}

} // namespace

template <>
void col_sum<Impl::cuda>(int rows, int cols, const float* X, float* out, const KChunks& kc)
{
    col_sum_cuda(rows, cols, X, out, kc);
}
template <>
void col_sum<Impl::cuda>(int rows, int cols, const float* X, bf16* out, const KChunks& kc)
{
    col_sum_cuda(rows, cols, X, out, kc);
}

} // namespace ompml
