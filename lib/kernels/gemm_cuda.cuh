// gemm in CUDA, the kernels: shared-memory tiled, register-blocked SGEMM with the fused epilogue
// C = act(alpha * op(A) op(B) + beta * C + bias), pre = the value before act.
//
// A block of 16 x 16 threads computes a (16*TM) x (16*TM) tile of C; each thread holds a
// TM x TM block of accumulators in registers, at rows ty + 16*r and columns tx + 16*c (strided,
// so a warp reads consecutive shared-memory words and writes consecutive columns of C).
// Per step of BK, the block stages op(A) (BK, BM) and op(B) (BK, BN) tiles in shared memory,
// k-major, so the inner product reads them row by row. The global loads are arranged so that
// consecutive threads read consecutive addresses for each of the four transpose cases
// (templated: the branches compile away). Edges are zero-padded, so any M, N, K works.
// Two tile sizes: 128x128 when there are enough tiles to fill the GPU (kGemmLargeTiles, the
// rule the omp gemm follows too), else 64x64 (more blocks for the skinny shapes of MLP layers).
// One kernel for both operand types (T = float, or bf16 widened to float as the tiles are
// staged: the shared tiles, the FMAs and the epilogue are the float kernel's) and both output
// types (O = float or bf16, rounded once as stored); the epilogue is gemm.hpp's gemm_epilogue.
//
// Two translation units instantiate these templates, one per operand type (float operands in
// gemm_cuda.cu, bf16 in gemm_bf16_cuda.cu): 16 tiled kernels each, and every one inlines the
// epilogue into each of its accumulators, so one file for all 32 took nvcc 3-4 minutes (cicc
// and ptxas about equally) while the rest of the library waited for it; two compile in
// parallel in half that.
#pragma once

#include "kernels/cuda_common.cuh"
#include "kernels/gemm.hpp"

namespace ompml::gemm_cuda {

constexpr int kThreads = 256; // 16 x 16

template <int TM, int BK, bool TA, bool TB, class T, class O>
__global__ void __launch_bounds__(kThreads) gemm_kernel(Gemm g, const T* __restrict__ A, const T* __restrict__ B, O* C,
                                                        const float* __restrict__ bias, float* __restrict__ pre)
{
    // A: (M, K), or (K, M) when TA;  B: (K, N), or (N, K) when TB;  C, pre: (M, N);  bias: (N)
    constexpr int BM = 16 * TM, BN = 16 * TM;
    // Padding makes the row stride (mod 32 banks) = 32 / BK, so the tile stores of one warp hit
    // 32 distinct banks in every transpose case.
    constexpr int PAD = 32 / BK;
    __shared__ float As[BK][BM + PAD]; // op(A) tile, (BK, BM)
    __shared__ float Bs[BK][BN + PAD]; // op(B) tile, (BK, BN)

    const int M = g.m, N = g.n, K = g.k;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;

    float acc[TM][TM];
#pragma unroll
    for (int r = 0; r < TM; ++r)
#pragma unroll
        for (int c = 0; c < TM; ++c) acc[r][c] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int e = threadIdx.x; e < BM * BK; e += kThreads) {
            // element (p, i) of op(A); walk whichever index is contiguous in memory
            const int p = TA ? e / BM : e % BK;
            const int i = TA ? e % BM : e / BK;
            const int gi = row0 + i, gp = k0 + p;
            float v = 0.0f;
            if (gi < M && gp < K)
                v = to_float(TA ? A[static_cast<long>(gp) * M + gi] : A[static_cast<long>(gi) * K + gp]);
            As[p][i] = v;
        }
#pragma unroll
        for (int e = threadIdx.x; e < BN * BK; e += kThreads) {
            // element (p, j) of op(B)
            const int p = TB ? e % BK : e / BN;
            const int j = TB ? e / BK : e % BN;
            const int gj = col0 + j, gp = k0 + p;
            float v = 0.0f;
            if (gj < N && gp < K)
                v = to_float(TB ? B[static_cast<long>(gj) * K + gp] : B[static_cast<long>(gp) * N + gj]);
            Bs[p][j] = v;
        }
        __syncthreads();

#pragma unroll
        for (int p = 0; p < BK; ++p) {
            float a[TM], b[TM];
#pragma unroll
            for (int r = 0; r < TM; ++r) a[r] = As[p][ty + 16 * r];
#pragma unroll
            for (int c = 0; c < TM; ++c) b[c] = Bs[p][tx + 16 * c];
#pragma unroll
            for (int r = 0; r < TM; ++r)
#pragma unroll
                for (int c = 0; c < TM; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
        }
        __syncthreads(); // the next step overwrites the tiles
    }

    // Fused epilogue, the reference's (gemm_epilogue).
#pragma unroll
    for (int r = 0; r < TM; ++r) {
        const int i = row0 + ty + 16 * r;
        if (i >= M) continue;
#pragma unroll
        for (int c = 0; c < TM; ++c) {
            const int j = col0 + tx + 16 * c;
            if (j >= N) continue;
            gemm_epilogue(g, acc[r][c], static_cast<long>(i) * N + j, j, C, bias, pre);
        }
    }
}

template <int TM, int BK, class T, class O>
void launch(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    constexpr int BM = 16 * TM;
    const long grid_y = (g.m + BM - 1) / BM;
    require(grid_y <= 65535,
            "gemm (cuda): m = " + std::to_string(g.m) + " exceeds the grid limit of " + std::to_string(65535L * BM) +
                " rows");
    const dim3 grid((g.n + BM - 1) / BM, static_cast<unsigned>(grid_y));
    if (!g.trans_a && !g.trans_b)
        gemm_kernel<TM, BK, false, false><<<grid, kThreads>>>(g, A, B, C, bias, pre);
    else if (!g.trans_a && g.trans_b)
        gemm_kernel<TM, BK, false, true><<<grid, kThreads>>>(g, A, B, C, bias, pre);
    else if (g.trans_a && !g.trans_b)
        gemm_kernel<TM, BK, true, false><<<grid, kThreads>>>(g, A, B, C, bias, pre);
    else
        gemm_kernel<TM, BK, true, true><<<grid, kThreads>>>(g, A, B, C, bias, pre);
    CUDA_CHECK_LAUNCH();
}

// The split tree of the chunks' products (ws: count slices of M N floats) and the epilogue.
template <class O>
__global__ void chunk_tree_kernel(Gemm g, long MN, const float* __restrict__ ws, O* C)
{
    for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < MN;
         i += static_cast<long>(gridDim.x) * blockDim.x) {
        TreeSum<float> t;
        for (int c = 0; c < g.kc.count; ++c) t.add(ws[c * MN + i]);
        gemm_epilogue(g, t.total(), i, static_cast<int>(i % g.n), C, static_cast<const float*>(nullptr),
                      static_cast<float*>(nullptr));
    }
}

template <class T, class O>
void gemm_tiled(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre);

// K in chunks (Gemm::kc, as the omp gemm's GPU form): each chunk's product, the tiled kernel over
// its rows (a contiguous block of A (K, M) and B (K, N)), into a slice of scratch, then the tree.
template <class T, class O>
void gemm_chunks(const Gemm& g, const T* A, const T* B, O* C)
{
    const long MN = static_cast<long>(g.m) * g.n;
    float* ws = static_cast<float*>(cuda::scratch(sizeof(float) * MN * g.kc.count));
    for (int c = 0; c < g.kc.count; ++c) {
        const long k0 = chunk_row(g.kc, c);
        Gemm gc = g;
        gc.kc = KChunks{};
        gc.k = static_cast<int>(chunk_row(g.kc, c + 1) - k0); // 0 rows: the slice is zeros
        gc.alpha = 1.0f;
        gemm_tiled(gc, A + k0 * g.m, B + k0 * g.n, ws + c * MN, static_cast<const float*>(nullptr),
                   static_cast<float*>(nullptr));
    }
    chunk_tree_kernel<<<cuda::grid_for(static_cast<std::size_t>(MN)), cuda::kBlock>>>(g, MN, ws, C);
    CUDA_CHECK_LAUNCH();
}

template <class T, class O>
void gemm_tiled(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    if (g.kc.chunks > 0) {
        gemm_chunks(g, A, B, C);
        return;
    }
    const long tiles128 = static_cast<long>((g.m + 127) / 128) * ((g.n + 127) / 128);
    if (tiles128 >= kGemmLargeTiles)
        launch<8, 8>(g, A, B, C, bias, pre); // 128x128 tiles, 8x8 per thread
    else
        launch<4, 16>(g, A, B, C, bias, pre); // 64x64 tiles, 4x4 per thread
}

} // namespace ompml::gemm_cuda
