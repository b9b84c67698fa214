// Parts of the omp gemm (gemm_omp.cpp) shared by its two bodies, and the GPU body itself, in a
// header so that tests can run the GPU body's arithmetic on host cores as one team (the
// tiling, edges and transposes; see test_gemm.cpp), which CI can do without a GPU.
#pragma once

#include "kernels/gemm.hpp"

#include <omp.h>

namespace ompml::omp_gemm {

// The problem, passed by value into the target region: the Gemm, and the host body's path for
// bf16 operands, chosen on the host before the launch (host_gemm_path).
struct GemmArgs : Gemm {
    HostGemm path = HostGemm::fp32;
};

#pragma omp declare target

// op(A)(i, p) and op(B)(p, j) of the row-major operands, as float (T: float or bf16; exact for
// bf16, a float's top half).
// A: (M, K) or (K, M); B: (K, N) or (N, K)
template <class T>
inline float op_a(const Gemm& g, const T* A, int i, int p)
{
    return to_float(g.trans_a ? A[static_cast<long>(p) * g.m + i] : A[static_cast<long>(i) * g.k + p]);
}
template <class T>
inline float op_b(const Gemm& g, const T* B, int p, int j)
{
    return to_float(g.trans_b ? B[static_cast<long>(j) * g.k + p] : B[static_cast<long>(p) * g.n + j]);
}

// ---------------------------------------------------------------------------------------------
// nvptx64 bodies: the algorithm of the CUDA twin (gemm_cuda.cu), in directives.
//
// A team of 256 threads, 16 x 16, computes a BM x BN = 16 TM x 16 TM tile of C; each thread a
// TM x TM register block at rows ty + 16 r, columns tx + 16 c (so a warp's 32 threads read 16
// consecutive words of the B tile, broadcast words of the A tile, and write 16 consecutive
// columns of C: coalesced stores). Per step of BK, the team stages op(A) and op(B) tiles, k-major,
// in team-shared memory. Two register blocks, as in CUDA:
// - TM = 8, BK = 8 (128 x 128 tiles): 64 FMAs per 16 shared-memory loads. An SM issues 4 times
//   more FP32 FMAs per cycle than it serves 4-byte shared loads (128 lanes against 32 words), so
//   a 4 x 4 block (16 FMAs per 8 loads) caps a big gemm near half of the FP32 peak; 8 x 8 lifts
//   that cap. Used when there are at least kGemmLargeTiles (gemm.hpp) such tiles, e.g. 4096^3.
// - TM = 4, BK = 16 (64 x 64 tiles): MLP layers are batch (64..1024) x hidden (10..4096), where
//   128 x 128 tiles would leave most SMs idle; 64 x 64 gives tens to hundreds of teams, and the
//   lower register count lets several teams share an SM to hide load latency.
// Padding: a tile row of BM + 32 / BK floats puts the tile stores of one warp on 32 distinct banks
// in every transpose case. Edge tiles: out-of-range elements are loaded as zero and not stored.
// The thread loop runs in rounds so the kernel stays correct if the runtime grants fewer than
// 256 threads. The operands are float or bf16 (T); bf16 elements are widened to float as they
// are staged, so the tiles, the arithmetic and the epilogue (gemm_epilogue, gemm.hpp) are the
// float kernel's; the output is float or bf16 (O).
constexpr int TEAM = 256;
constexpr long kMaxTeams = 1L << 30;

// Tiles of C of a TM-register-block configuration (BM = BN = 16 TM).
inline long gemm_tiles(const Gemm& g, int tm)
{
    const int b = 16 * tm;
    return static_cast<long>((g.m + b - 1) / b) * ((g.n + b - 1) / b);
}

// In an unnamed namespace: internal linkage gives the team-shared tiles (static locals) internal
// linkage too. As weak symbols, which they are in a function template with external linkage,
// ptxas leaves them out of each kernel's shared-memory count.
namespace {
template <int TM, int BK, class T, class O>
void gemm_league_tiled(const Gemm g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    constexpr int BM = 16 * TM, BN = 16 * TM, PAD = 32 / BK;
    static float As[BK][BM + PAD]; // op(A) tile, k-major
    static float Bs[BK][BN + PAD]; // op(B) tile
#pragma omp allocate(As, Bs) allocator(omp_pteam_mem_alloc)
    const int tiles_m = (g.m + BM - 1) / BM;
    const long tiles = gemm_tiles(g, TM);
    for (long tile = omp_get_team_num(); tile < tiles; tile += omp_get_num_teams()) {
        const int i0 = static_cast<int>(tile % tiles_m) * BM, j0 = static_cast<int>(tile / tiles_m) * BN;
        // firstprivate: each thread keeps these in registers instead of reading the team's
        // shared copies (what variables shared into a parallel region become on a GPU).
#pragma omp parallel firstprivate(g, A, B, C, bias, pre, i0, j0)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            for (int round = 0; round < TEAM; round += nt) {
                const int slot = round + t, tx = slot % 16, ty = slot / 16;
                float acc[TM][TM] = {};
                for (int p0 = 0; p0 < g.k; p0 += BK) {
                    // Consecutive threads take consecutive addresses of the stored operand.
                    for (int e = t; e < BM * BK; e += nt) {
                        const int i = g.trans_a ? e % BM : e / BK, p = g.trans_a ? e / BM : e % BK;
                        const bool in = i0 + i < g.m && p0 + p < g.k;
                        As[p][i] = in ? op_a(g, A, i0 + i, p0 + p) : 0.0f;
                    }
                    for (int e = t; e < BK * BN; e += nt) {
                        const int j = g.trans_b ? e / BK : e % BN, p = g.trans_b ? e % BK : e / BN;
                        const bool in = j0 + j < g.n && p0 + p < g.k;
                        Bs[p][j] = in ? op_b(g, B, p0 + p, j0 + j) : 0.0f;
                    }
#pragma omp barrier
                    if (slot < TEAM) {
                        for (int p = 0; p < BK; ++p) {
                            float a[TM], b[TM];
                            for (int r = 0; r < TM; ++r) a[r] = As[p][ty + 16 * r];
                            for (int c = 0; c < TM; ++c) b[c] = Bs[p][tx + 16 * c];
                            for (int r = 0; r < TM; ++r)
                                for (int c = 0; c < TM; ++c) acc[r][c] += a[r] * b[c];
                        }
                    }
#pragma omp barrier
                }
                if (slot < TEAM) {
                    for (int r = 0; r < TM; ++r) {
                        const int i = i0 + ty + 16 * r;
                        for (int c = 0; c < TM; ++c) {
                            const int j = j0 + tx + 16 * c;
                            if (i < g.m && j < g.n)
                                gemm_epilogue(g, acc[r][c], static_cast<long>(i) * g.n + j, j, C, bias, pre);
                        }
                    }
                }
            }
        }
    }
}
} // namespace

#pragma omp end declare target

} // namespace ompml::omp_gemm
