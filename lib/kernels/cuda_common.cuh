// Helpers shared by the CUDA kernels (lib/kernels/*_cuda.cu) and nothing else: launch sizes,
// warp/block reductions, and a small device scratch area for reduction partials.
// All kernels run on the default stream from one host thread (the backend's contract), so
// the scratch area needs no locking.
#pragma once

#include "core/cuda_check.hpp"

#include <algorithm>
#include <cstddef>

namespace ompml::cuda {

constexpr int kBlock = 256; // threads per block for element-wise and reduction kernels
// Reductions use at most this many blocks, a constant (not the SM count), so the order of
// the partial sums, and thus the bits of the result, is the same on every GPU.
constexpr int kMaxReduceBlocks = 1024;

inline int sm_count()
{
    static const int n = [] {
        int dev = 0, count = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev));
        return count;
    }();
    return n;
}

// Blocks for a grid-stride loop over n elements: one element per thread up to a few waves
// of the whole GPU; beyond that threads loop, which costs nothing for streaming kernels.
inline unsigned grid_for(std::size_t n)
{
    const std::size_t want = (n + kBlock - 1) / kBlock;
    const std::size_t cap = static_cast<std::size_t>(sm_count()) * 32;
    return static_cast<unsigned>(std::max<std::size_t>(1, std::min(want, cap)));
}

inline unsigned reduce_grid_for(std::size_t n)
{
    const std::size_t want = (n + kBlock - 1) / kBlock;
    return static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(want, kMaxReduceBlocks)));
}

// Device scratch of at least `bytes`, grown on demand and kept for the life of the process:
// a cudaMalloc per reduction would synchronise the device and cost more than the kernel.
// Never freed: freeing at exit races the CUDA runtime's own teardown.
inline void* scratch(std::size_t bytes)
{
    static void* p = nullptr;
    static std::size_t have = 0;
    if (bytes > have) {
        if (p != nullptr) CUDA_CHECK(cudaFree(p));
        have = std::max<std::size_t>(bytes, 64 * 1024);
        CUDA_CHECK(cudaMalloc(&p, have));
    }
    return p;
}

template <class T>
__device__ inline T warp_sum(T v)
{
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v; // every lane holds the sum
}

template <class T>
__device__ inline T warp_max(T v)
{
    for (int off = 16; off > 0; off >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32); the result is valid in thread 0.
// Fixed shuffle tree: the same inputs give the same bits.
template <class T>
__device__ inline T block_sum(T v)
{
    __shared__ T warp_part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? warp_part[threadIdx.x] : T(0);
    if (warp == 0) v = warp_sum(v);
    __syncthreads(); // warp_part may be reused by the next call
    return v;
}

// out[0] = sum of part[0..n), by one block in a fixed order (second pass of a reduction).
template <class T>
__global__ void sum_partials_kernel(const T* part, int n, T* out)
{
    T s = T(0);
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}

} // namespace ompml::cuda
