// gemm as one OpenMP target kernel, C = act(alpha * op(A) * op(B) + beta * C + bias), with two
// bodies for the one target region, picked per device at compile time by `declare variant`:
//
// - portable (host cores, and the x86 virtual device of the offload-check build): the classic
//   blocked CPU gemm. Each thread owns a (MC, NC) block of C at a time; for every KC slice of
//   K it packs op(A) into MR-row micro-panels and op(B) into NR-column micro-panels (contiguous,
//   zero-padded, so every transpose case runs the same inner loop over unit-stride data), then
//   a register-blocked MR x NR micro-kernel accumulates into a per-thread float tile. The
//   epilogue (alpha, beta, bias, pre, activation) runs once per element after the full K sum.
//   Nothing depends on team size or team-shared memory: packing buffers are per-thread locals.
// - nvptx64: one team per (BM, BN) tile of C, tiles of op(A) and op(B) staged through
//   team-shared memory, a 4 x 4 (64 x 64 tiles) or, for big products, 8 x 8 (128 x 128 tiles)
//   register block per thread: the algorithm of the CUDA twin. Device-only, since it relies on
//   team-shared memory and barriers (the host cannot form 256-thread teams, and a pteam-allocated
//   tile would be shared by all host teams: that is why such kernels are device-only
//   variants beside a portable one).
#include "kernels/gemm_omp.hpp"
#include "kernels/gemm.hpp"

#include "core/memory.hpp"

#include <omp.h>

namespace ompml {
namespace {

using namespace omp_gemm;

#pragma omp declare target

// ---------------------------------------------------------------------------------------------
// Portable body (CPU).
//
// Micro-kernel MR x NR = 12 x 32: 24 vector accumulators of 16 floats (AVX-512 has 32 vector
// registers; 2 more hold the B row, the A values are broadcast from memory), i.e. 24 FMAs per
// 14 loads per k step, enough independent FMAs to cover FMA latency on two pipes. The GNU
// vector type makes the register blocking explicit rather than hoping the loop vectorizer keeps
// a 12 x 32 array in registers; without AVX-512 the compiler splits it into narrower vectors.
// Blocks: a KC x NR micro-panel of B (32 KB) stays in L1 while the MC x KC block of A (96 KB) and
// the KC x NC block of B (256 KB) sit in L2. Per thread: 96 + 256 + 96 KB of stack (libomp's
// default worker stack is 4 MB).
constexpr int MR = 12, NR = 32, MC = 96, NC = 256, KC = 256;
static_assert(MC % MR == 0 && NC % NR == 0 && NR % 16 == 0, "blocks hold whole micro-panels");

// Loads and stores go through memcpy (no aliasing or alignment assumptions; each compiles to
// one vector move), written in place: a vector passed to or returned from a function makes clang
// warn about the ABI when the host build has no -march=native (the gpu preset).
typedef float vfloat16 __attribute__((vector_size(64)));

// Packs rows [i0, i0 + mc) x cols [p0, p0 + kc) of op(A) into micro-panels of MR rows:
// Ap[(i / MR) * kc * MR + p * MR + i % MR], rows past mc are zero.
inline void pack_a(const GemmArgs& g, const float* A, int i0, int mc, int p0, int kc, float* Ap)
{
    for (int ir = 0; ir < mc; ir += MR) {
        const int mr = mc - ir < MR ? mc - ir : MR;
        float* dst = Ap + static_cast<long>(ir) * kc; // (kc, MR)
        if (g.ta) {
            // A (K, M): a row of the micro-panel is contiguous in A.
            for (int p = 0; p < kc; ++p) {
                const float* src = A + static_cast<long>(p0 + p) * g.M + i0 + ir;
                for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? src[i] : 0.0f;
            }
        } else {
            // A (M, K): transpose MR rows; each row is read once, contiguously.
            for (int i = 0; i < MR; ++i) {
                if (i < mr) {
                    const float* src = A + static_cast<long>(i0 + ir + i) * g.K + p0;
                    for (int p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
                } else {
                    for (int p = 0; p < kc; ++p) dst[p * MR + i] = 0.0f;
                }
            }
        }
    }
}

// Packs rows [p0, p0 + kc) x cols [j0, j0 + nc) of op(B) into micro-panels of NR columns:
// Bp[(j / NR) * kc * NR + p * NR + j % NR], columns past nc are zero.
inline void pack_b(const GemmArgs& g, const float* B, int p0, int kc, int j0, int nc, float* Bp)
{
    for (int jr = 0; jr < nc; jr += NR) {
        const int nr = nc - jr < NR ? nc - jr : NR;
        float* dst = Bp + static_cast<long>(jr) * kc; // (kc, NR)
        if (!g.tb) {
            // B (K, N): a row of the micro-panel is contiguous in B.
            for (int p = 0; p < kc; ++p) {
                const float* src = B + static_cast<long>(p0 + p) * g.N + j0 + jr;
                if (nr == NR) {
                    for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[j];
                } else {
                    for (int j = 0; j < NR; ++j) dst[p * NR + j] = j < nr ? src[j] : 0.0f;
                }
            }
        } else {
            // B (N, K): transpose NR rows of B; each is read once, contiguously.
            for (int j = 0; j < NR; ++j) {
                if (j < nr) {
                    const float* src = B + static_cast<long>(j0 + jr + j) * g.K + p0;
                    for (int p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
                } else {
                    for (int p = 0; p < kc; ++p) dst[p * NR + j] = 0.0f;
                }
            }
        }
    }
}

// c (MR, ldc) (+)= a (kc, MR) . b (kc, NR); accumulate = false overwrites c (first K slice).
inline void micro_kernel(int kc, const float* __restrict a, const float* __restrict b, float* __restrict c, int ldc,
                         bool accumulate)
{
    vfloat16 acc0[MR], acc1[MR];
    for (int i = 0; i < MR; ++i) {
        acc0[i] = vfloat16{};
        acc1[i] = vfloat16{};
    }
    for (int p = 0; p < kc; ++p) {
        vfloat16 b0, b1;
        __builtin_memcpy(&b0, b + p * NR, sizeof(b0));
        __builtin_memcpy(&b1, b + p * NR + 16, sizeof(b1));
        for (int i = 0; i < MR; ++i) {
            const float ai = a[p * MR + i];
            acc0[i] += ai * b0;
            acc1[i] += ai * b1;
        }
    }
    for (int i = 0; i < MR; ++i) {
        float* ci = c + static_cast<long>(i) * ldc;
        if (accumulate) {
            vfloat16 c0, c1;
            __builtin_memcpy(&c0, ci, sizeof(c0));
            __builtin_memcpy(&c1, ci + 16, sizeof(c1));
            acc0[i] += c0;
            acc1[i] += c1;
        }
        __builtin_memcpy(ci, &acc0[i], sizeof(acc0[i]));
        __builtin_memcpy(ci + 16, &acc1[i], sizeof(acc1[i]));
    }
}

// The epilogue of a block, Cb (MC, NC) holding its K sums; the activation is a template argument
// so the loop can vectorize (a switch over it inside the loop would block that).
template <Act ACT>
void epilogue_block(const GemmArgs& g, const float* Cb, int i0, int mc, int j0, int nc, float* C, const float* bias,
                    float* pre)
{
    for (int i = 0; i < mc; ++i) {
        const float* cb = Cb + i * NC;
        const long row = static_cast<long>(i0 + i) * g.N + j0;
        for (int j = 0; j < nc; ++j) gemm_epilogue(g, ACT, cb[j], row + j, j0 + j, C, bias, pre);
    }
}

// Body of the target region on the host and the x86 virtual device: the league's teams split
// the (MC, NC) blocks of C round-robin, and each team's threads share its blocks dynamically.
void gemm_league_cpu(const GemmArgs g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    const int blocks_m = (g.M + MC - 1) / MC, blocks_n = (g.N + NC - 1) / NC;
    const int blocks = blocks_m * blocks_n;
    const int team = omp_get_team_num(), nteams = omp_get_num_teams();
#pragma omp parallel
    {
        alignas(64) float Ap[MC * KC]; // packed op(A) block, (MC / MR) micro-panels of (KC, MR)
        alignas(64) float Bp[KC * NC]; // packed op(B) block, (NC / NR) micro-panels of (KC, NR)
        alignas(64) float Cb[MC * NC]; // the K sum of this block of C, (MC, NC)
#pragma omp for schedule(dynamic, 1)
        for (int blk = team; blk < blocks; blk += nteams) {
            // Consecutive blocks walk down a column of blocks: they share op(B) columns, so the
            // B block packed by one is likely still in L3 for the next.
            const int i0 = (blk % blocks_m) * MC, j0 = (blk / blocks_m) * NC;
            const int mc = g.M - i0 < MC ? g.M - i0 : MC;
            const int nc = g.N - j0 < NC ? g.N - j0 : NC;
            for (int p0 = 0; p0 < g.K; p0 += KC) {
                const int kc = g.K - p0 < KC ? g.K - p0 : KC;
                pack_a(g, A, i0, mc, p0, kc, Ap);
                pack_b(g, B, p0, kc, j0, nc, Bp);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        micro_kernel(kc, Ap + static_cast<long>(ir) * kc, Bp + static_cast<long>(jr) * kc,
                                     Cb + ir * NC + jr, NC, p0 > 0);
            }
            switch (g.act) {
            case Act::relu: epilogue_block<Act::relu>(g, Cb, i0, mc, j0, nc, C, bias, pre); break;
            case Act::tanh: epilogue_block<Act::tanh>(g, Cb, i0, mc, j0, nc, C, bias, pre); break;
            case Act::gelu: epilogue_block<Act::gelu>(g, Cb, i0, mc, j0, nc, C, bias, pre); break;
            default: epilogue_block<Act::identity>(g, Cb, i0, mc, j0, nc, C, bias, pre); break;
            }
        }
    }
}

// maybe_unused: only the nvptx64 compilation calls them (through the variants), so the host
// compilation would warn that they are unneeded.
[[maybe_unused]] void gemm_league_nvptx(const GemmArgs g, const float* A, const float* B, float* C, const float* bias,
                                        float* pre)
{
    gemm_league_tiled<4, 16>(g, A, B, C, bias, pre);
}
[[maybe_unused]] void gemm_league_nvptx_large(const GemmArgs g, const float* A, const float* B, float* C,
                                              const float* bias, float* pre)
{
    gemm_league_tiled<8, 8>(g, A, B, C, bias, pre);
}

// The bodies of the two target regions: the nvptx64 variants on NVIDIA GPUs, the portable body
// elsewhere (the large-tile region is only launched on a GPU).
#pragma omp declare variant(gemm_league_nvptx) match(device = {arch(nvptx64)})
void gemm_league(const GemmArgs g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    gemm_league_cpu(g, A, B, C, bias, pre);
}
#pragma omp declare variant(gemm_league_nvptx_large) match(device = {arch(nvptx64)})
void gemm_league_large(const GemmArgs g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    gemm_league_cpu(g, A, B, C, bias, pre);
}

#pragma omp end declare target

} // namespace

template <>
void gemm<Impl::omp>(const Gemm& params, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    // A: (M, K) or (K, M); B: (K, N) or (N, K); C, pre: (M, N); bias: (N)
    const GemmArgs g{params.m,       params.n,     params.k,    params.trans_a,
                     params.trans_b, params.alpha, params.beta, params.act};
    // GPU: one team of TEAM threads per tile; 128 x 128 tiles where there are enough of them.
    // CPU: one team of all threads (libomp's default layout; more teams would only split the
    // cores).
    const bool gpu = omp_device_is_gpu(); // the nvptx64 bodies run there
    // Teams beyond the grid limit loop over the remaining tiles.
    auto teams = [](long tiles) { return static_cast<int>(tiles < kMaxTeams ? tiles : kMaxTeams); };
    if (gpu && gemm_tiles(g, 8) >= kGemmLargeTiles) {
        const int nteams = teams(gemm_tiles(g, 8));
#pragma omp target teams num_teams(nteams) thread_limit(TEAM) is_device_ptr(A, B, C, bias, pre)
        gemm_league_large(g, A, B, C, bias, pre);
        return;
    }
    const int nteams = gpu ? teams(gemm_tiles(g, 4)) : 1;
    const int nthreads = gpu ? TEAM : omp_get_max_threads();
#pragma omp target teams num_teams(nteams) thread_limit(nthreads) is_device_ptr(A, B, C, bias, pre)
    gemm_league(g, A, B, C, bias, pre);
}

} // namespace ompml

namespace ompml {

// PLACEHOLDER (replaced by the packed bf16 gemm): one thread per element of C.
template <>
void gemm<Impl::omp>(const Gemm& params, const bf16* A, const bf16* B, float* C, const float* bias, float* pre,
                     bf16* C16)
{
    const GemmArgs g{params.m,       params.n,     params.k,    params.trans_a,
                     params.trans_b, params.alpha, params.beta, params.act};
#pragma omp target teams distribute parallel for collapse(2) is_device_ptr(A, B, C, bias, pre, C16)
    for (int i = 0; i < g.M; ++i)
        for (int j = 0; j < g.N; ++j) {
            float acc = 0.0f;
            for (int p = 0; p < g.K; ++p) {
                const bf16 a = g.ta ? A[static_cast<long>(p) * g.M + i] : A[static_cast<long>(i) * g.K + p];
                const bf16 b = g.tb ? B[static_cast<long>(j) * g.K + p] : B[static_cast<long>(p) * g.N + j];
                acc += to_float(a) * to_float(b);
            }
            const long idx = static_cast<long>(i) * g.N + j;
            gemm_epilogue(g, g.act, acc, idx, j, C, bias, pre);
            if (C16 != nullptr) C16[idx] = to_bf16(C[idx]);
        }
}

} // namespace ompml
