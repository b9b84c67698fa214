// gemm as one OpenMP target kernel (kernels/gemm.hpp: C = epilogue(alpha op(A) op(B) + beta C)),
// for float and bf16 operands (float accumulation) and a float or bf16 output, with two bodies
// for each target region, picked per device at compile time by `declare variant`:
//
// - portable (host cores, and the x86 virtual device of the offload-check build): the classic
//   packed-panel CPU gemm (gemm_blocked), one driver templated on a "panel kernel" P that says
//   how op(A) and op(B) are packed and which register/tile micro-kernel consumes them:
//     FloatPanels<float>  fp32: MR x NR = 6 x 64 AVX-512 FMA micro-kernel on float panels;
//     AmxPanels           bf16 where the CPU has AMX-BF16: 32 x 32 blocks of 2 x 2 AMX tiles
//                         (TDPBF16PS) on bf16 panels, B in VNNI pairs;
//     Bf16DotPanels       bf16 where the CPU has AVX512-BF16 but no AMX (AMD EPYC Zen 4/5):
//                         6 x 64 VDPBF16PS micro-kernel on panels of bf16 k-pairs;
//     FloatPanels<bf16>   bf16 elsewhere: the bf16 operands widened (exactly) into float panels,
//                         then the fp32 micro-kernel.
//   The bf16 path is chosen on the host before each launch (host_gemm_path, gemm.hpp).
//   For every NC-column block of C and every K slice (kc, at most KC: slice_most), the team
//   packs the kc x NC panel of op(B) ONCE into a shared buffer (each thread its share of the
//   micro-panels, then a barrier, unless each thread computes only with the panels it packed;
//   with fewer column panels than threads, each thread packs them all into its own slots),
//   or, for a float B (K, N) that few row panels use (M = 128: the batch), reads it in place
//   (b_in_place);
//   each thread then packs its rows of op(A), MC at a time (or, with op(B) in place and few
//   column panels per thread, reads a float A (M, K) in place too: ARows), and runs the
//   micro-kernel over its part of the block. The threads split the (row panel, column panel)
//   grid of C as a tm x tn grid chosen for the least work per thread (2 threads on the MLP's
//   128-row products split the columns; on square products the rows). The micro-kernel
//   accumulates straight into C
//   (partial K sums live in C between slices when beta == 0, in a workspace otherwise); after the
//   last slice the MR x NR tile's epilogue (alpha, beta, bias, pre, activation, output type) runs while
//   the tile is in L1, or, for a float C with beta 0 and no activation but relu, in the
//   micro-kernel's registers.
//   Tiles cut by C's edge run a micro-kernel of their rows and vectors. Nothing depends on team
//   size or team-shared memory.
// - nvptx64: one team per (BM, BN) tile of C, tiles of op(A) and op(B) staged through
//   team-shared memory (bf16 widened to float as it is staged), a 4 x 4 (64 x 64 tiles) or, for
//   big products, 8 x 8 (128 x 128 tiles) register block per thread: the algorithm of the CUDA
//   twin (gemm_omp.hpp). Device-only, since it relies on team-shared memory and barriers.
//
// Why these micro-kernels (measured on an Intel Xeon with AVX-512 + AMX and on an AMD EPYC Zen 5,
// 2 cores each; docs/results/host.md, precision.md): the float micro-kernel needs zmm
// accumulators, and clang's -march=native on the Xeon tunes for 256-bit vectors
// (prefer-vector-width=256), which split the 24 zmm accumulators into 48 ymm ones (spilled):
// min_vector_width(512) keeps them in zmm. For bf16: on the Xeon, VDPBF16PS issues at 0.5 per
// cycle, HALF the FLOP rate of two fp32 FMAs per cycle, while AMX's TDPBF16PS measured 3.1
// TFLOP/s on one core (15x the fp32 FMA peak of ~213 GFLOP/s): AMX first. On Zen 5 (no AMX)
// VDPBF16PS issues at 1.85 per cycle, 1.84x the fp32 FLOP rate: the dot-product panels there.
// Measured there, 2 threads: fp32 0.95-0.98x OpenBLAS's SkylakeX sgemm at 1024^3, 0.94-0.98x at
// 2048^3, 0.95-1.17x at the MLP's shapes (batch 128); bf16 (AMX) 2.4-4.3x the fp32 gemm.
#include "kernels/gemm_omp.hpp"
#include "kernels/gemm.hpp"

#include "core/check.hpp"
#include "core/memory.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

// x86-64 host code only (never the nvptx64 device pass, which sees the host's macros too).
#if defined(__x86_64__) && !defined(__NVPTX__)
#define OMPML_GEMM_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
// Keeps GNU vectors of 64 bytes in zmm registers in builds that tune for 256-bit vectors.
#define OMPML_ZMM __attribute__((min_vector_width(512)))
#else
#define OMPML_GEMM_X86 0
#define OMPML_ZMM
#endif

namespace ompml {
namespace {

using namespace omp_gemm;

#pragma omp declare target

constexpr int round_up(int x, int m) { return (x + m - 1) / m * m; }
constexpr int min_int(int a, int b) { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Float panels and the fp32 micro-kernel (operands T = float, or bf16 widened as packed).
//
// Micro-kernel MR x NR = 6 x 64: 24 zmm accumulators of 16 floats (AVX-512 has 32 registers;
// 4 more hold the B row, the A values are broadcast), i.e. 24 FMAs per 10 loads per k step,
// enough independent FMAs to cover FMA latency on two pipes. Measured (1 thread, against
// OpenBLAS in the same run; docs/results/precision.md): 12 x 32 (24 FMAs per 14 loads) ran at
// 0.79-0.87x OpenBLAS at 1024^3, 6 x 64 at 0.87-0.93x: the kernel is bound by its load port
// uops, not its FMAs; 7 x 64 (28 accumulators) spills. The GNU vector type makes the register
// blocking explicit rather than hoping the loop vectorizer keeps a 6 x 64 array in registers;
// without AVX-512 the compiler splits it into narrower vectors.
// Blocks: the thread's MC x kc block of A (up to 360 KB) and the shared kc x NC panel of B (up
// to 1.5 MB) sit in L2 (2 MB per core). A packed kc x NR micro-panel of B is reused across the
// MC / MR row panels: kc is cut to 128 (L1_B: 32 KB of the Xeon's 48 KB L1; slice_most) so that
// it stays in L1 while the A micro-panels stream from L2. A KC x NR one (96 KB) came from L2 at
// every row panel: X W^T at 128 x 512 x 784 and 128 x 256 x 512 took 0.94-0.96x the time with
// kc 128 (4 alternated rounds of the best of 300 runs; 1024^3 within the noise); kc 96 took
// 1.04-1.05x and kc 64 1.04-1.12x the time of kc 128, kc 192 between 128 and 384. B read in place
// (BRows: its rows, N floats apart, share few L1 sets) gains nothing from the shorter slice: KC.
// MC 96..240 measured within the noise of each other; NC a power of 2 matters: NC = 960 left a
// 64-column block at N = 1024 and 2048 that repacked all of op(A) for 1/16 of the work
// (0.83-0.92x OpenBLAS, against 0.91-0.97x with NC = 1024).
typedef float vfloat16 __attribute__((vector_size(64)));

// A float op(B) = B (K, N) read where it lies: row p of a micro-panel at b + p * ld.
struct BRows {
    const float* b;
    long ld;
};

// A float op(A) = A (M, K) read where it lies: row i of a micro-panel at a + i * ld (with op(B)
// in place, for few column panels: kMostColPanelsAInPlace).
struct ARows {
    const float* a;
    long ld;
};

// What a micro-kernel does to each 16 columns of its sums before storing them into cout: Sums
// keeps them (a partial K slice, or a tile whose epilogue runs afterwards through epilogue_tile);
// Scaled (a plain product) and RegisterEpilogue are the whole epilogue of a float C with beta 0,
// in registers, the same steps in the same order as epilogue_tile's (so the same bits):
// z = alpha * sums + 0; forward: z += bias, pre = z, c = act(z) for identity and relu; or
// backward (relu): c = pre <= 0 ? 0 : z. Bias and pre are decided per 16 columns on a pointer
// fixed for the tile: a branch, not a masked store. Vectors by reference: one passed by value
// makes clang warn about the ABI without AVX-512.
struct Sums {
    OMPML_ZMM void operator()(vfloat16&, int, int) const {}
};

struct Scaled { // a plain product's: alpha * sums + 0
    float alpha;
    OMPML_ZMM void operator()(vfloat16& z, int, int) const { z = alpha * z + 0.0f; }
};

template <Act ACT, bool BACKWARD>
struct RegisterEpilogue {
    float alpha;
    const float* bias; // forward: at the tile's first column, or null
    float* pre;        // forward: written at the tile's (0, 0), or null; backward: read there
    long ld;           // pre's row stride
    OMPML_ZMM void operator()(vfloat16& z, int i, int c) const
    {
        z = alpha * z + 0.0f;
        float* p = pre == nullptr ? nullptr : pre + i * ld + c;
        if constexpr (BACKWARD) {
            vfloat16 zin;
            __builtin_memcpy(&zin, p, sizeof(zin));
            z = zin <= 0.0f ? vfloat16{} : z;
        } else {
            if (bias != nullptr) {
                vfloat16 b;
                __builtin_memcpy(&b, bias + c, sizeof(b));
                z += b;
            }
            if (p != nullptr) __builtin_memcpy(p, &z, sizeof(z));
            if constexpr (ACT == Act::relu) z = z <= 0.0f ? vfloat16{} : z;
        }
    }
};

// A 16 x 16 block of 32-bit words (floats, or bf16 k-pairs) transposed in registers: log2(16)
// rounds, each swapping the off-diagonal h x h blocks of every 2h x 2h block with one two-source
// shuffle per row (vpermt2ps on AVX-512; the words are only moved, never computed on).
template <int H, std::size_t... C>
OMPML_ZMM inline void swap_blocks(vfloat16& a, vfloat16& b, std::index_sequence<C...>)
{
    const vfloat16 lo = __builtin_shufflevector(a, b, ((C & H) ? 16 + C - H : C)...);
    const vfloat16 hi = __builtin_shufflevector(a, b, ((C & H) ? 16 + C : C + H)...);
    a = lo;
    b = hi;
}
template <int H>
OMPML_ZMM inline void transpose_round(vfloat16 (&r)[16])
{
    for (int i = 0; i < 16; ++i)
        if ((i & H) == 0) swap_blocks<H>(r[i], r[i + H], std::make_index_sequence<16>{});
}
// Word q of destination row j = word j of source row q, for q, j < 16; rows are the given
// number of bytes apart.
OMPML_ZMM inline void transpose16(const void* src, long src_row_bytes, void* dst, long dst_row_bytes)
{
    vfloat16 r[16];
    for (int j = 0; j < 16; ++j) __builtin_memcpy(&r[j], static_cast<const char*>(src) + j * src_row_bytes, 64);
    transpose_round<8>(r);
    transpose_round<4>(r);
    transpose_round<2>(r);
    transpose_round<1>(r);
    for (int q = 0; q < 16; ++q) __builtin_memcpy(static_cast<char*>(dst) + q * dst_row_bytes, &r[q], 64);
}

// 16 columns of 6 rows (src, rows src_row_floats apart) as 16 columns of 6 contiguous floats,
// dst[c * 6 + i] = row i [c]: the rows interleaved in pairs (one two-source shuffle per 8 columns
// of a pair), then each 16 floats of dst gathered from the three pairs by two more.
template <int O, std::size_t... F>
OMPML_ZMM inline void gather6(const vfloat16 (&pair)[3][2], vfloat16& out, std::index_sequence<F...>)
{
    // Float f of output vector O: column c, row i, at 2 (c % 8) + i % 2 of pair i / 2's half c / 8.
    constexpr int h = O / 3; // the half: columns 0-7 or 8-15, 48 floats of dst each
    const auto row = [](int f) { return (16 * (O % 3) + f) % 6; };
    const auto at = [](int f) { return 2 * ((16 * (O % 3) + f) / 6) + (16 * (O % 3) + f) % 2; };
    const vfloat16 t = __builtin_shufflevector(pair[0][h], pair[1][h], (row(F) < 2 ? at(F) : 16 + at(F))...);
    out = __builtin_shufflevector(t, pair[2][h], (row(F) < 4 ? int(F) : 16 + at(F))...);
}
template <std::size_t... O>
OMPML_ZMM inline void interleave6x16(const float* src, long src_row_floats, float* dst, std::index_sequence<O...>)
{
    vfloat16 r[6], pair[3][2];
    for (int i = 0; i < 6; ++i) __builtin_memcpy(&r[i], src + i * src_row_floats, 64);
    for (int k = 0; k < 3; ++k) {
        pair[k][0] =
            __builtin_shufflevector(r[2 * k], r[2 * k + 1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        pair[k][1] = __builtin_shufflevector(r[2 * k], r[2 * k + 1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                             30, 15, 31);
    }
    vfloat16 out[6];
    (gather6<O>(pair, out[O], std::make_index_sequence<16>{}), ...);
    __builtin_memcpy(dst, out, sizeof(out));
}

template <class T>
struct FloatPanels {
    using Elem = T;
    using Packed = float;
    static constexpr int NV = 4; // vectors of 16 floats per micro-panel row
    static constexpr int MR = 6, NR = 16 * NV, KU = 1, MC = 240, KC = 384, NC = 1024;
    static constexpr int L1_B = 32 * 1024; // bytes of L1 for a packed micro-panel of op(B)
    static constexpr int CIN_LAST = 1;     // micro adds cin to the finished products (gemm_chunked)
    static_assert(MC % MR == 0 && NC % NR == 0 && NR % 16 == 0, "blocks hold whole micro-panels");

    static void begin() {}
    static void end() {}

    static constexpr bool DIRECT_B = std::is_same_v<T, float>;

    // Rows [i0, i0 + mc) x cols [p0, p0 + kc) of op(A) into micro-panels of MR rows:
    // Ap[(i / MR) * kc * MR + p * MR + i % MR], rows past mc zero.
    static void pack_a(const Gemm& g, const T* A, int i0, int mc, int p0, int kc, float* Ap)
    {
        for (int ir = 0; ir < mc; ir += MR) {
            const int mr = min_int(mc - ir, MR);
            float* dst = Ap + static_cast<long>(ir) * kc; // (kc, MR)
            if (g.trans_a) {
                // A (K, M): a row of the micro-panel is contiguous in A. Whole panels without the
                // edge's test per element, which kept the copy scalar.
                const long ld = g.m;
                const T* src = A + p0 * ld + i0 + ir;
                if (mr == MR)
                    for (int p = 0; p < kc; ++p) {
                        alignas(32) float row[MR]; // as in pack_b: dst may not alias src
                        for (int i = 0; i < MR; ++i) row[i] = to_float(src[p * ld + i]);
                        __builtin_memcpy(dst + p * MR, row, sizeof(row));
                    }
                else
                    for (int p = 0; p < kc; ++p)
                        for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? to_float(src[p * ld + i]) : 0.0f;
            } else if (mr == MR) {
                // A (M, K): MR rows read side by side, the panel written in order (one row at a
                // time, the stores land 4 MR bytes apart: 0.84-0.94x OpenBLAS at 2048^3, against
                // 0.94-0.97x so); float rows 16 k at a time through registers (element by
                // element, 6 scalar loads and stores per k: 8% of a 128 x 256 x 512 X W^T's
                // samples, 4.5% so, most of it waiting on A's loads).
                const T* src = A + static_cast<long>(i0 + ir) * g.k + p0;
                int p = 0;
                if constexpr (std::is_same_v<T, float> && MR == 6)
                    for (; p + 16 <= kc; p += 16)
                        interleave6x16(src + p, g.k, dst + p * MR, std::make_index_sequence<6>{});
                for (; p < kc; ++p)
                    for (int i = 0; i < MR; ++i) dst[p * MR + i] = to_float(src[static_cast<long>(i) * g.k + p]);
            } else {
                for (int i = 0; i < MR; ++i) {
                    if (i < mr) {
                        const T* src = A + static_cast<long>(i0 + ir + i) * g.k + p0;
                        for (int p = 0; p < kc; ++p) dst[p * MR + i] = to_float(src[p]);
                    } else {
                        for (int p = 0; p < kc; ++p) dst[p * MR + i] = 0.0f;
                    }
                }
            }
        }
    }

    // Rows [p0, p0 + kc) x cols [j0, j0 + nr) of op(B), nr <= NR, into one micro-panel:
    // Bp[p * NR + j], columns past nr zero.
    static void pack_b(const Gemm& g, const T* B, int p0, int kc, int j0, int nr, float* dst)
    {
        if (!g.trans_b) {
            // B (K, N): a row of the micro-panel is contiguous in B.
            for (int p = 0; p < kc; ++p) {
                const T* src = B + static_cast<long>(p0 + p) * g.n + j0;
                if (nr == NR) {
                    // Through a local row: writing dst directly, the compiler could not rule out
                    // dst aliasing src and emitted 64 scalar moves.
                    alignas(64) float row[NR];
                    for (int j = 0; j < NR; ++j) row[j] = to_float(src[j]);
                    __builtin_memcpy(dst + p * NR, row, sizeof(row));
                } else {
                    for (int j = 0; j < NR; ++j) dst[p * NR + j] = j < nr ? to_float(src[j]) : 0.0f;
                }
            }
        } else {
            // B (N, K): transpose NR rows of B, PB of k at a time, so that the PB rows of the
            // micro-panel being written (4 KB) stay in L1; a whole one (kc x NR floats, up to
            // 96 KB) does not. Writing it a row of B at a time missed L1 on every store.
            constexpr int PB = 16;
            for (int pb = 0; pb < kc; pb += PB) {
                const int pn = min_int(PB, kc - pb);
                int j = 0;
                if constexpr (std::is_same_v<T, float>)
                    if (pn == PB) // 16 x 16 blocks through registers; the last, cut by nr, from a copy
                        for (; j < nr; j += 16) {
                            const float* src = B + static_cast<long>(j0 + j) * g.k + p0 + pb;
                            if (nr - j >= 16) {
                                transpose16(src, 4L * g.k, dst + pb * NR + j, 4L * NR);
                            } else {
                                alignas(64) float cut[16 * 16] = {}; // rows past nr: zero columns
                                for (int r = 0; r < nr - j; ++r)
                                    __builtin_memcpy(cut + 16 * r, src + static_cast<long>(r) * g.k, 64);
                                transpose16(cut, 64, dst + pb * NR + j, 4L * NR);
                            }
                        }
                for (; j < nr; ++j) {
                    const T* src = B + static_cast<long>(j0 + j) * g.k + p0 + pb;
                    for (int q = 0; q < pn; ++q) dst[(pb + q) * NR + j] = to_float(src[q]);
                }
                // The columns past nr: zeros, a row at a time (the compiler made a column at a
                // time a scatter, the most of a 128 x 10 x 256 product's time).
                for (int q = 0; q < pn; ++q)
                    for (int c = j; c < NR; ++c) dst[(pb + q) * NR + c] = 0.0f;
            }
        }
    }

    // cout (MR, NR; row stride ldo) = a (kc, MR) . b (kc, NR) [+ cin (MR, NR; stride ldi)], b a
    // packed micro-panel or B's rows where they lie (BRows: each row fetched 6 rows ahead, as
    // nothing else prefetches rows N floats apart), a a packed micro-panel or A's rows (ARows:
    // six contiguous rows, which the hardware prefetchers follow).
    // cin may equal cout. Loads and stores go through memcpy (no aliasing or alignment
    // assumptions; each compiles to one vector move), written in place: a vector passed to or
    // returned from a function makes clang warn about the ABI when the build has no AVX-512.
    // RM x 16 RV: the whole tile, or the first rows and vectors of one cut by the edge of C
    // (same layouts, same sums; the zero padding is not computed). epilogue: applied to each
    // 16 columns before the store (Sums: none; RegisterEpilogue: all of a float C's, stored
    // straight into C).
    template <int RM = MR, int RV = NV, class E = Sums, class BV = const float*, class AV = const float*>
    OMPML_ZMM static void micro(int kc, AV a, BV b, const float* cin, int ldi, float* cout, int ldo,
                                const E& epilogue = {})
    {
        // The C tile's rows are N floats apart (the same L1 set when N is a large power of 2):
        // fetched while the k loop runs.
        vfloat16 acc[RM][RV];
        for (int i = 0; i < RM; ++i)
            for (int v = 0; v < RV; ++v) {
                __builtin_prefetch(cout + static_cast<long>(i) * ldo + 16 * v, 1);
                acc[i][v] = vfloat16{};
            }
        for (int p = 0; p < kc; ++p) {
            vfloat16 bv[RV];
            for (int v = 0; v < RV; ++v) {
                if constexpr (std::is_same_v<BV, BRows>) {
                    __builtin_memcpy(&bv[v], b.b + p * b.ld + 16 * v, sizeof(bv[v]));
                    __builtin_prefetch(b.b + (p + 6) * b.ld + 16 * v);
                } else {
                    __builtin_memcpy(&bv[v], b + p * NR + 16 * v, sizeof(bv[v]));
                }
            }
            for (int i = 0; i < RM; ++i) {
                float ai;
                if constexpr (std::is_same_v<AV, ARows>)
                    ai = a.a[i * a.ld + p];
                else
                    ai = a[p * MR + i];
                for (int v = 0; v < RV; ++v) acc[i][v] += ai * bv[v];
            }
        }
        for (int i = 0; i < RM; ++i)
            for (int v = 0; v < RV; ++v) {
                if (cin != nullptr) {
                    vfloat16 c;
                    __builtin_memcpy(&c, cin + static_cast<long>(i) * ldi + 16 * v, sizeof(c));
                    acc[i][v] += c;
                }
                epilogue(acc[i][v], i, 16 * v);
                __builtin_memcpy(cout + static_cast<long>(i) * ldo + 16 * v, &acc[i][v], sizeof(acc[i][v]));
            }
    }
};

// ---------------------------------------------------------------------------------------------
// AMX panels (bf16 operands, x86-64 with AMX-BF16, chosen at run time: host_gemm_path()).
//
// A 32 x 32 block of C is 2 x 2 accumulator tiles of 16 x 16 floats (tmm0-3); per 32 values of
// k, two A tiles (16 rows x 32 bf16, tmm4-5) and two B tiles (16 k-pairs x 16 columns x 2 bf16,
// the VNNI layout TDPBF16PS reads, tmm6-7) feed 4 TDPBF16PS (16 x 16 x 32 multiply-adds each).
// Packing pads k to a multiple of 32 (zeros), rows and columns to 32.
//   A micro-panel: Ap[(p / 32) * 32 * 32 + i * 32 + p % 32]   (a tile row is 32 k of one row)
//   B micro-panel: Bp[(p / 2) * 2 * NR + j * 2 + p % 2]        (a tile row is one k-pair)
// Outside `declare target`, and its constants are enumerators, not static data members: the host
// pass of the gpu build would otherwise list them as device globals that the nvptx64 pass (where
// this code does not exist) lacks. The x86 virtual device compiles it implicitly, as called.
#pragma omp end declare target
#if OMPML_GEMM_X86
#define OMPML_AMX __attribute__((target("amx-tile,amx-bf16,avx512f")))

// 32 elements of two rows as 32 k-pairs: d[2 j] = s0[j], d[2 j + 1] = s1[j], d apart from both
// rows: two two-source shuffles (vpermt2w on AVX-512). Written element by element, the copy was
// 64 scalar moves per pair of rows, half of AmxPanels::pack_b's time in bf16 training.
typedef unsigned short vhalf32 __attribute__((vector_size(64)));
template <std::size_t... C>
OMPML_ZMM inline void interleave32(const bf16* s0, const bf16* s1, bf16* d, std::index_sequence<C...>)
{
    vhalf32 a, b;
    __builtin_memcpy(&a, s0, sizeof(a));
    __builtin_memcpy(&b, s1, sizeof(b));
    const vhalf32 lo = __builtin_shufflevector(a, b, (C % 2 ? 32 + C / 2 : C / 2)...);
    const vhalf32 hi = __builtin_shufflevector(a, b, (C % 2 ? 48 + C / 2 : 16 + C / 2)...);
    __builtin_memcpy(d, &lo, sizeof(lo));
    __builtin_memcpy(d + 32, &hi, sizeof(hi));
}
OMPML_ZMM inline void interleave32(const bf16* s0, const bf16* s1, bf16* d)
{
    interleave32(s0, s1, d, std::make_index_sequence<32>{});
}

// B's panel as rows of k pairs, the layout TDPBF16PS and VDPBF16PS read: element (p, j) at
// (p / 2) * 2 * NR + 2 * j + p % 2, zeros past kc (up to kcp) and past column nr.
template <int NR>
void pack_b_pairs(const Gemm& g, const bf16* B, int p0, int kc, int kcp, int j0, int nr, bf16* dst)
{
    static_assert(NR % 32 == 0, "whole rows of the panel are interleaved 32 columns at a time");
    const bf16 zero{0};
    if (!g.trans_b) {
        // B (K, N): two rows of B interleaved make one k-pair row of the panel.
        int p = 0;
        if (nr == NR)
            for (; p + 2 <= kc; p += 2) {
                bf16* d = dst + (p / 2) * 2 * NR;
                const bf16* s0 = B + static_cast<long>(p0 + p) * g.n + j0;
                for (int j = 0; j < NR; j += 32) interleave32(s0 + j, s0 + g.n + j, d + 2 * j);
            }
        for (; p < kcp; ++p) {
            bf16* d = dst + (p / 2) * 2 * NR + p % 2;
            const bf16* src = B + static_cast<long>(p0 + p) * g.n + j0;
            for (int j = 0; j < NR; ++j) d[2 * j] = p < kc && j < nr ? src[j] : zero;
        }
    } else {
        // B (N, K): a k-pair of column j is two consecutive elements of B's row j, one 32-bit
        // word: 16 columns x 16 pairs are a 16 x 16 transpose of words, done in registers (one
        // 4-byte store per pair, 256 bytes apart, missed L1 on a whole panel of K = 784).
        const int jt = nr / 16 * 16, pt = kc / 32 * 32; // the columns and k done by blocks
        for (int jb = 0; jb < jt; jb += 16)
            for (int p = 0; p < pt; p += 32)
                transpose16(B + static_cast<long>(j0 + jb) * g.k + p0 + p, 2L * g.k, dst + p * NR + 2 * jb, 4L * NR);
        for (int j = 0; j < NR; ++j) {
            const bf16* src = B + static_cast<long>(j0 + j) * g.k + p0;
            int p = j < jt ? pt : 0;
            if (j < nr)
                for (; p + 2 <= kc; p += 2) __builtin_memcpy(dst + p * NR + 2 * j, src + p, 4);
            for (; p < kcp; ++p) dst[(p / 2) * 2 * NR + 2 * j + p % 2] = p < kc && j < nr ? src[p] : zero;
        }
    }
}

struct TileConfig {
    unsigned char palette = 1, start_row = 0, reserved[14] = {};
    unsigned short colsb[16] = {}; // bytes per row
    unsigned char rows[16] = {};
};

// KC 1024: a K up to 1024 (the MLP's widths) in one slice, so a bf16 C (the hidden layers' outputs)
// needs no float workspace for its partial sums between slices. In the bf16 quick start the
// 784-wide input layer's forward product took 0.157-0.170 ms (p50) as two slices of KC 512, and
// 0.130-0.135 as one (5 alternated runs; the bench's products, into a float C, within the noise).
struct AmxPanels {
    using Elem = bf16;
    using Packed = bf16;
    enum : int { MR = 32, NR = 32, KU = 32, MC = 128, KC = 1024, NC = 1024, CIN_LAST = 0 };
    static_assert(MC % MR == 0 && NC % NR == 0, "blocks hold whole micro-panels");

    // The tile configuration is per thread: each thread of the team loads it before its first
    // tile instruction and releases the tiles when done.
    OMPML_AMX static void begin()
    {
        TileConfig c;
        for (int t = 0; t < 8; ++t) {
            c.rows[t] = 16;
            c.colsb[t] = 64; // 16 floats (C), 32 bf16 (A), 16 bf16 pairs (B)
        }
        _tile_loadconfig(&c);
    }
    OMPML_AMX static void end() { _tile_release(); }

    static void pack_a(const Gemm& g, const bf16* A, int i0, int mc, int p0, int kc, bf16* Ap)
    {
        const int kcp = round_up(kc, KU);
        const bf16 zero{0};
        for (int ir = 0; ir < mc; ir += MR) {
            const int mr = min_int(mc - ir, MR);
            bf16* dst = Ap + static_cast<long>(ir) * kcp; // (kcp / 32, MR, 32)
            if (g.trans_a) {
                // A (K, M): k-major; a run of MR rows is contiguous in A. A whole block of 32 k:
                // 16 pairs of A's rows interleaved into k-pairs, then two 16 x 16 transposes of
                // the pairs put each row's 32 k together (a tile row). The rest element by element.
                int p = 0;
                if (mr == MR)
                    for (; p + 32 <= kc; p += 32) {
                        static_assert(MR == 32, "a pair of A's rows is one interleave32");
                        alignas(64) bf16 pairs[16][2 * MR]; // pairs[q][2 i + e] = A(p + 2 q + e, i)
                        for (int q = 0; q < 16; ++q) {
                            const bf16* s0 = A + static_cast<long>(p0 + p + 2 * q) * g.m + i0 + ir;
                            interleave32(s0, s0 + g.m, pairs[q]);
                        }
                        bf16* d = dst + (p / 32) * MR * 32;
                        transpose16(pairs[0], sizeof(pairs[0]), d, 64);
                        transpose16(pairs[0] + 32, sizeof(pairs[0]), d + 16 * 32, 64);
                    }
                for (; p < kcp; ++p) {
                    bf16* d = dst + (p / 32) * MR * 32 + p % 32;
                    const bf16* src = A + static_cast<long>(p0 + p) * g.m + i0 + ir;
                    for (int i = 0; i < MR; ++i) d[i * 32] = p < kc && i < mr ? src[i] : zero;
                }
            } else {
                // A (M, K): 32 consecutive k of a row are one tile row (whole runs copied as
                // such; the padding past kc and mr element by element).
                for (int i = 0; i < MR; ++i) {
                    const bf16* src = A + static_cast<long>(i0 + ir + i) * g.k + p0;
                    int p = 0;
                    if (i < mr)
                        for (; p + 32 <= kc; p += 32) __builtin_memcpy(dst + (p / 32) * MR * 32 + i * 32, src + p, 64);
                    for (; p < kcp; ++p) dst[(p / 32) * MR * 32 + i * 32 + p % 32] = p < kc && i < mr ? src[p] : zero;
                }
            }
        }
    }

    static void pack_b(const Gemm& g, const bf16* B, int p0, int kc, int j0, int nr, bf16* dst)
    {
        pack_b_pairs<NR>(g, B, p0, kc, round_up(kc, KU), j0, nr, dst);
    }

    // cout (32, 32; row stride ldo) = a . b [+ cin (32, 32; stride ldi)], kcp a multiple of 32.
    OMPML_AMX static void micro(int kcp, const bf16* a, const bf16* b, const float* cin, int ldi, float* cout, int ldo)
    {
        if (cin != nullptr) {
            const long s = 4L * ldi;
            _tile_loadd(0, cin, s);
            _tile_loadd(1, cin + 16, s);
            _tile_loadd(2, cin + 16L * ldi, s);
            _tile_loadd(3, cin + 16L * ldi + 16, s);
        } else {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
        }
        for (int p = 0; p < kcp; p += 32) {
            const bf16* ak = a + p * MR; // (32 rows, 32 k)
            const bf16* bk = b + p * NR; // (16 k-pairs, 32 columns, 2)
            _tile_loadd(4, ak, 64);
            _tile_loadd(5, ak + 16 * 32, 64);
            _tile_loadd(6, bk, 4 * NR);
            _tile_loadd(7, bk + 32, 4 * NR);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        const long s = 4L * ldo;
        _tile_stored(0, cout, s);
        _tile_stored(1, cout + 16, s);
        _tile_stored(2, cout + 16L * ldo, s);
        _tile_stored(3, cout + 16L * ldo + 16, s);
    }
};

// ---------------------------------------------------------------------------------------------
// AVX512-BF16 panels (bf16 operands, x86-64 with AVX512_BF16 and no AMX, e.g. AMD EPYC Zen 4/5).
//
// The float micro-kernel's shape, MR x NR = 6 x 64 (24 zmm accumulators of 16 floats), stepping
// k by pairs: VDPBF16PS adds, to each float lane j, a[2j] b[2j] + a[2j+1] b[2j+1] (both products
// exact in float, each addition rounded to nearest even, subnormals flushed), so one instruction
// does the work of two FMAs on 16 lanes. Per k-pair: 4 loads of B (64 columns x 2 k), 6
// broadcasts of an A pair (one 32-bit load each), 24 VDPBF16PS. Packing pads k to even (zeros).
//   A micro-panel: Ap[(p / 2) * 2 * MR + i * 2 + p % 2]   (an A pair is one 32-bit word)
//   B micro-panel: Bp[(p / 2) * 2 * NR + j * 2 + p % 2]   (the VNNI layout, as for AMX)
// Measured on an AMD EPYC Zen 5 (2 cores; docs/results/host.md): VDPBF16PS zmm issues at 1.85
// per cycle against 2 for VFMADD231PS, so this kernel can reach 1.84x the fp32 FLOP rate.
#define OMPML_DPBF16 __attribute__((target("avx512f,avx512bf16"), min_vector_width(512)))

struct Bf16DotPanels {
    using Elem = bf16;
    using Packed = bf16;
    enum : int { NV = 4, MR = 6, NR = 16 * NV, KU = 2, MC = 240, KC = 768, NC = 1024, CIN_LAST = 1 };
    static_assert(MC % MR == 0 && NC % NR == 0, "blocks hold whole micro-panels");

    static void begin() {}
    static void end() {}

    static void pack_a(const Gemm& g, const bf16* A, int i0, int mc, int p0, int kc, bf16* Ap)
    {
        const int kcp = round_up(kc, KU);
        const bf16 zero{0};
        int pairs_done = 0; // k of op(A) transposed already packed, in whole pairs
        if (g.trans_a) {
            // A (K, M): the two rows of a k-pair interleaved across the block's mc columns, as for
            // B (interleave32), then each panel's MR words (24 bytes) copied into place, zeros
            // past mc. Element by element it was 2 bytes a store, 4 MR bytes apart.
            alignas(64) bf16 words[2 * (MC + MR)];
            for (; pairs_done + 2 <= kc; pairs_done += 2) {
                const bf16* s0 = A + static_cast<long>(p0 + pairs_done) * g.m + i0;
                int c = 0;
                for (; c + 32 <= mc; c += 32) interleave32(s0 + c, s0 + g.m + c, words + 2 * c);
                for (; c < round_up(mc, MR); ++c) {
                    words[2 * c] = c < mc ? s0[c] : zero;
                    words[2 * c + 1] = c < mc ? s0[g.m + c] : zero;
                }
                for (int ir = 0; ir < mc; ir += MR)
                    __builtin_memcpy(Ap + static_cast<long>(ir) * kcp + pairs_done * MR, words + 2 * ir, 4 * MR);
            }
        }
        for (int ir = 0; ir < mc; ir += MR) {
            const int mr = min_int(mc - ir, MR);
            bf16* dst = Ap + static_cast<long>(ir) * kcp; // (kcp / 2, MR, 2)
            if (g.trans_a) {
                // The last k of an odd kc, and its zero pair: a run of MR rows at one k is
                // contiguous in A.
                for (int p = pairs_done; p < kcp; ++p) {
                    bf16* d = dst + (p / 2) * 2 * MR + p % 2;
                    const bf16* src = A + static_cast<long>(p0 + p) * g.m + i0 + ir;
                    for (int i = 0; i < MR; ++i) d[2 * i] = p < kc && i < mr ? src[i] : zero;
                }
            } else {
                // A (M, K): a pair is two consecutive elements of a row, one 32-bit word; a
                // whole panel's MR words of a pair gathered into one 4 MR-byte store (a row at a
                // time, the 4-byte stores 4 MR bytes apart became a scatter, the most of this
                // packing's time).
                const bf16* src = A + static_cast<long>(i0 + ir) * g.k + p0;
                int p = 0;
                if (mr == MR)
                    for (; p + 2 <= kc; p += 2) {
                        std::uint32_t pair[MR];
                        for (int i = 0; i < MR; ++i)
                            __builtin_memcpy(&pair[i], src + static_cast<long>(i) * g.k + p, 4);
                        __builtin_memcpy(dst + p * MR, pair, sizeof(pair));
                    }
                for (int i = 0; i < MR; ++i)
                    for (int q = p; q < kcp; ++q)
                        dst[(q / 2) * 2 * MR + 2 * i + q % 2] =
                            q < kc && i < mr ? src[static_cast<long>(i) * g.k + q] : zero;
            }
        }
    }

    static void pack_b(const Gemm& g, const bf16* B, int p0, int kc, int j0, int nr, bf16* dst)
    {
        pack_b_pairs<NR>(g, B, p0, kc, round_up(kc, KU), j0, nr, dst);
    }

    // cout (MR, NR; row stride ldo) = a . b [+ cin (MR, NR; stride ldi)], kcp even. cin may
    // equal cout.
    // RM x 16 RV: the whole tile or its first rows and vectors; the epilogue as FloatPanels::micro.
    template <int RM = MR, int RV = NV, class E = Sums>
    OMPML_DPBF16 static void micro(int kcp, const bf16* __restrict a, const bf16* __restrict b, const float* cin,
                                   int ldi, float* cout, int ldo, const E& epilogue = {})
    {
        __m512 acc[RM][RV];
        for (int i = 0; i < RM; ++i)
            for (int v = 0; v < RV; ++v) {
                __builtin_prefetch(cout + static_cast<long>(i) * ldo + 16 * v, 1);
                acc[i][v] = _mm512_setzero_ps();
            }
        for (int q = 0; q < kcp / 2; ++q) {
            __m512bh bv[RV];
            for (int v = 0; v < RV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + q * 2 * NR + 32 * v);
            for (int i = 0; i < RM; ++i) {
                int pair;
                __builtin_memcpy(&pair, a + q * 2 * MR + 2 * i, sizeof(pair));
                const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
                for (int v = 0; v < RV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
            }
        }
        for (int i = 0; i < RM; ++i)
            for (int v = 0; v < RV; ++v) {
                float* o = cout + static_cast<long>(i) * ldo + 16 * v;
                if (cin != nullptr)
                    acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_loadu_ps(cin + static_cast<long>(i) * ldi + 16 * v));
                vfloat16 z;
                __builtin_memcpy(&z, &acc[i][v], sizeof(z));
                epilogue(z, i, 16 * v);
                __builtin_memcpy(o, &z, sizeof(z));
            }
    }
};

// What the CPU offers the bf16 gemm, asked once per process: AMX-BF16 and AMX-TILE in CPUID
// (leaf 7, EDX bits 22 and 24) with the kernel's permission to use the tile data state (Linux
// asks each process to request it: arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); and
// AVX512_BF16 (with the OS saving zmm state, which __builtin_cpu_supports checks).
bool cpu_has_amx()
{
    static const bool ok = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
        if (((d >> 22) & 1u) == 0 || ((d >> 24) & 1u) == 0) return false;
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
}
bool cpu_has_avx512bf16()
{
    static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    return ok;
}
#else
bool cpu_has_amx() { return false; }
bool cpu_has_avx512bf16() { return false; }
#endif
#pragma omp declare target

// ---------------------------------------------------------------------------------------------
// The driver, shared by the panel kernels.

// The epilogue of an mr x nr tile whose K sums are in t (row stride ldt), while the tile is in
// L1: per row, one loop per step of gemm_epilogue (gemm.hpp), each decided once per row, never
// per element, in the same arithmetic order (so the same bits): z = alpha * acc + (beta == 0 ?
// 0 : beta * C); then forward: z += bias, pre = z, c = act(z); or backward: c =
// act_backward_elem(act, pre, z); then C = c in O. A loop that tested bias, pre or the output
// per element would be if-converted into masked vector stores based at a null pointer, which AMD
// Zen 5 runs at a crawl even with an all-false mask (toolchain.md). The activation is a template
// argument so its loop vectorizes. Measured, 1 thread, 4096 x 4096 x 128 (a dW gemm): 40 ms
// writing a float C, 31 ms writing it in bf16 (half the bytes to memory).
template <Act ACT, class O>
void epilogue_tile(const Gemm& g, float* t, int ldt, int i0, int mr, int j0, int nr, O* C, const float* bias,
                   float* pre)
{
    for (int i = 0; i < mr; ++i) {
        float* z = t + i * ldt; // (nr) the row's K sums, then its results
        const long row = static_cast<long>(i0 + i) * g.n + j0;
        if (g.beta == 0.0f) { // C is not read (it may hold NaN), as in BLAS
            for (int j = 0; j < nr; ++j) z[j] = g.alpha * z[j] + 0.0f;
        } else {
            for (int j = 0; j < nr; ++j) {
                const float old = g.beta * to_float(C[row + j]);
                z[j] = g.alpha * z[j] + old;
            }
        }
        if (g.act_backward) {
            const float* zin = pre + row; // (nr) the layer below's pre-activations
            for (int j = 0; j < nr; ++j) z[j] = act_backward_elem(ACT, zin[j], z[j]);
        } else {
            if (bias != nullptr)
                for (int j = 0; j < nr; ++j) z[j] += bias[j0 + j];
            if (pre != nullptr)
                for (int j = 0; j < nr; ++j) pre[row + j] = z[j];
            if constexpr (ACT != Act::identity)
                for (int j = 0; j < nr; ++j) z[j] = act_forward(ACT, z[j]);
        }
        for (int j = 0; j < nr; ++j) C[row + j] = from_float<O>(z[j]);
    }
}

// A tm x tn grid of the team's threads over the rp x cp micro-panels of a block of C: the one
// with the least work for the busiest thread; ties go to splitting columns (each thread then
// computes with exactly the micro-panels of op(B) it packed itself, still in its own cache:
// 128 x 512 x 784 on 2 threads ran 3-5% faster than with the rows split).
struct Grid {
    int tm, tn;
};
inline Grid thread_grid(int rp, int cp, int nt)
{
    Grid best{nt, 1};
    long best_work = -1;
    for (int tm = nt; tm >= 1; --tm) {
        if (nt % tm != 0) continue;
        const int tn = nt / tm;
        const long work = static_cast<long>((rp + tm - 1) / tm) * ((cp + tn - 1) / tn);
        if (best_work < 0 || work <= best_work) {
            best = {tm, tn};
            best_work = work;
        }
    }
    return best;
}

// The micro-kernel for an mr x nr tile: for a tile cut by the edge of C, where the panel kernel
// has them (its micro is a template on rows and 16-float vectors), the one of the tile's rows
// and vectors, which skips the zero padding: 784 columns are 12 1/4 micro-panels of 64, 128 rows
// 21 1/3 of 6. Same sums, in the same order, as the whole tile's kernel.
template <class P>
constexpr bool has_cut_micro = requires { &P::template micro<1, 1>; };

template <class P, int RM = P::MR, int RV = P::NV, class AV, class BV>
void micro_cut(int mr, int nv, int kcp, AV a, BV b, const float* cin, int ldi, float* cout, int ldo)
{
    if constexpr (RV > 1)
        if (nv < RV) return micro_cut<P, RM, RV - 1>(mr, nv, kcp, a, b, cin, ldi, cout, ldo);
    if constexpr (RM > 1)
        if (mr < RM) return micro_cut<P, RM - 1, RV>(mr, nv, kcp, a, b, cin, ldi, cout, ldo);
    P::template micro<RM, RV>(kcp, a, b, cin, ldi, cout, ldo);
}

template <class P, class AV, class BV>
void micro_tile(int mr, int nr, int kcp, AV a, BV b, const float* cin, int ldi, float* cout, int ldo)
{
    if constexpr (has_cut_micro<P>)
        micro_cut<P>(mr, (nr + 15) / 16, kcp, a, b, cin, ldi, cout, ldo);
    else
        P::micro(kcp, a, b, cin, ldi, cout, ldo);
}

// One MR x NR tile of C for one K slice: the micro-kernel on the packed panels a and b, the
// slice's partial sums kept in S (a float C itself, or the workspace) until the last slice, whose
// sums go through t to the epilogue (a whole tile of a float C with beta 0 and no activation
// but relu: straight into C, the epilogue in registers). Tiles cut by the edge of C go through t
// every time, so no access leaves C.
template <class P, class O, class AV, class BV>
void tile_slice(const Gemm& g, int kcp, bool first, bool last, AV a, BV b, int i, int j, float* S, float* t, O* C,
                const float* bias, float* pre)
{
    constexpr int MR = P::MR, NR = P::NR;
    const int mr = min_int(MR, g.m - i), nr = min_int(NR, g.n - j);
    const bool full = mr == MR && nr == NR;
    float* s = S + static_cast<long>(i) * g.n + j; // this tile's partial sums, (mr, nr) of stride N
    const float* cin = nullptr;
    int ldi = NR;
    if (!first) {
        if (full) {
            cin = s;
            ldi = g.n;
        } else {
            for (int r = 0; r < MR; ++r)
                for (int c = 0; c < NR; ++c)
                    t[r * NR + c] = r < mr && c < nr ? s[static_cast<long>(r) * g.n + c] : 0.0f;
            cin = t;
        }
    }
    if (!last && full) {
        P::micro(kcp, a, b, cin, ldi, s, g.n);
        return;
    }
    if constexpr (has_cut_micro<P> && std::is_same_v<O, float>) {
        // A whole tile of a float C with beta 0 and the MLP's activations (the layers' forward
        // and dX products, the weight gradients, the bench's gemms): the epilogue in the
        // micro-kernel's registers, the tile stored once into C. Through t it cost a third of a
        // K = 128 tile's time.
        const bool relu = g.act == Act::relu;
        if (last && full && g.beta == 0.0f && (relu || (g.act == Act::identity && !g.act_backward))) {
            const long at = static_cast<long>(i) * g.n + j;
            float* const c = C + at;
            float* const p = pre == nullptr ? nullptr : pre + at;
            const float* const bj = bias == nullptr ? nullptr : bias + j;
            if (g.act_backward)
                P::template micro<MR, P::NV>(kcp, a, b, cin, ldi, c, g.n,
                                             RegisterEpilogue<Act::relu, true>{g.alpha, nullptr, p, g.n});
            else if (relu)
                P::template micro<MR, P::NV>(kcp, a, b, cin, ldi, c, g.n,
                                             RegisterEpilogue<Act::relu, false>{g.alpha, bj, p, g.n});
            else if (bias == nullptr && pre == nullptr)
                P::template micro<MR, P::NV>(kcp, a, b, cin, ldi, c, g.n, Scaled{g.alpha});
            else
                P::template micro<MR, P::NV>(kcp, a, b, cin, ldi, c, g.n,
                                             RegisterEpilogue<Act::identity, false>{g.alpha, bj, p, g.n});
            return;
        }
    }
    micro_tile<P>(mr, nr, kcp, a, b, cin, ldi, t, NR);
    if (!last) {
        for (int r = 0; r < mr; ++r)
            for (int c = 0; c < nr; ++c) s[static_cast<long>(r) * g.n + c] = t[r * NR + c];
        return;
    }
    switch (g.act) {
    case Act::relu: epilogue_tile<Act::relu>(g, t, NR, i, mr, j, nr, C, bias, pre); break;
    case Act::tanh: epilogue_tile<Act::tanh>(g, t, NR, i, mr, j, nr, C, bias, pre); break;
    case Act::gelu: epilogue_tile<Act::gelu>(g, t, NR, i, mr, j, nr, C, bias, pre); break;
    default: epilogue_tile<Act::identity>(g, t, NR, i, mr, j, nr, C, bias, pre); break;
    }
}

// Whether the micro-panels of op(B) are read where they lie (BRows) rather than packed: for a
// float B (K, N) (P::DIRECT_B, not transposed) used by few row panels of C per thread. Packing
// costs a copy of op(B) per call, repaid by each row panel's contiguous, L1-friendly reads; with
// few row panels the copy is not repaid. Measured on the Intel Xeon (2 threads, against packing
// in the same runs; docs/results/host.md): 22 row panels per thread (M = 128) 0.90-0.95x the
// time, 43 (M = 512, the rows split) 0.94-0.98x; 131 (784 x 512 x 128) 1.03-1.09x and 171
// (1024^3) 1.2x, whose rows 2 or 4 KB apart also share L1 sets. N a multiple of 16: the
// micro-kernel cut by N's edge reads whole vectors of 16 columns.
constexpr int kMostRowPanelsInPlace = 64;
template <class P>
constexpr bool has_direct_b = requires { requires P::DIRECT_B; };
template <class P>
bool b_in_place(const Gemm& g, int row_panels)
{
    if constexpr (has_direct_b<P>) return !g.trans_b && g.n % 16 == 0 && row_panels <= kMostRowPanelsInPlace;
    return false;
}

// With op(B) read in place, op(A) (M, K) is read in place too (ARows) where the thread has at most
// this many column panels: its packed block would be read that many times. Measured on the
// Intel Xeon (2 threads, NN, against packing op(A) in the same runs; 4-6 alternated rounds):
// 2 panels (128 x 256 x 512) 0.92-0.95x the time, 4 (128 x 512 x 784) 0.96-0.98x; 6-7 (128 x
// 784 x 512) 1.05x and 13 (512 x 784 x 128) 0.99-1.05x, where packing once pays.
constexpr int kMostColPanelsAInPlace = 4;

// Where a gemm keeps its partial K sums between slices without a workspace: in C, when C is
// float (its old value is never read with beta == 0); a bf16 C cannot hold them.
inline float* sums_in_place(float* C) { return C; }
inline float* sums_in_place(bf16*) { return nullptr; }

// The longest K slice: P::KC, or, where the panel kernel gives the bytes of L1 a packed
// micro-panel of op(B) may take (L1_B) and op(B) is packed, the kc whose micro-panel (kc x its
// columns, up to NR) fits in them: it then stays in L1 while the row panels of the block stream
// past. Judged from the shapes alone (not the output type or the team's size), so that each
// element's sum order is the same for a float and a bf16 C and for any number of threads.
template <class P>
constexpr bool has_l1_b = requires { P::L1_B; };
template <class P>
int slice_most(const Gemm& g, bool direct_b)
{
    if constexpr (has_l1_b<P>) {
        const int row_bytes = static_cast<int>(sizeof(typename P::Packed)) * round_up(min_int(g.n, P::NR), 16);
        if (!direct_b) return min_int(P::KC, P::L1_B / row_bytes / P::KU * P::KU);
    }
    return P::KC;
}

// Body of the target region on the host and the x86 virtual device (one team; see the file
// comment for the loop structure).
template <class P, class O>
void gemm_blocked(const Gemm g, const typename P::Elem* A, const typename P::Elem* B, O* C, const float* bias,
                  float* pre)
{
    using Packed = typename P::Packed;
    constexpr int MR = P::MR, NR = P::NR;
    const int rp = (g.m + MR - 1) / MR; // row micro-panels of C
    // K in equal slices of at most slice_most (a multiple of KU; the last may be shorter), B in
    // place or not judged as for one thread (with the rows split, a thread may read B in place
    // in slices cut for packing).
    const int most = slice_most<P>(g, b_in_place<P>(g, rp));
    const int slices = (g.k + most - 1) / most;
    const int ks = round_up((g.k + slices - 1) / slices, P::KU);
    // Partial K sums between slices: in a float C when beta == 0, else in a workspace (the
    // epilogue needs the old C; a bf16 C cannot hold float sums).
    float* in_place = sums_in_place(C);
    const bool workspace = slices > 1 && (g.beta != 0.0f || in_place == nullptr);
    float* S = workspace
        ? static_cast<float*>(omp_alloc(sizeof(float) * g.m * static_cast<long>(g.n), omp_default_mem_alloc))
        : in_place;
    alignas(64) Packed Bp[P::KC * P::NC]; // the shared packed op(B) panel, (NC / NR) micro-panels
#pragma omp parallel
    {
        alignas(64) Packed Ap[P::MC * P::KC]; // this thread's packed op(A) block, (MC / MR) micro-panels
        alignas(64) float t[MR * NR];         // a tile's sums on their way to the epilogue
        const int nt = omp_get_num_threads(), me = omp_get_thread_num();
        P::begin();
        for (int j0 = 0; j0 < g.n; j0 += P::NC) {
            const int nc = min_int(g.n - j0, P::NC), cp = (nc + NR - 1) / NR;
            const Grid grid = thread_grid(rp, cp, nt);
            const int ti = me / grid.tn, tj = me % grid.tn;
            const int r0 = rp * ti / grid.tm, r1 = rp * (ti + 1) / grid.tm; // my row panels
            const int c0 = cp * tj / grid.tn, c1 = cp * (tj + 1) / grid.tn; // my column panels
            // With a 1 x nt grid a thread computes with exactly the micro-panels of op(B) it
            // packed, each at its own place in Bp whatever the slice: no thread waits for another
            // until the block is done (on a busy or virtual machine, a descheduled thread held up
            // the other at every slice).
            // With the rows split, fewer column panels than threads (an output layer's few
            // columns) and room in Bp, each thread packs all of them into its own slots: no
            // thread waits for another (128 x 10 x 256 on 2 threads: 0.66x the time of one
            // thread packing while the other waits at the barrier).
            const bool copy_b = grid.tm > 1 && cp < nt && cp * nt <= P::NC / NR;
            const bool own_b = grid.tm == 1 || copy_b;
            // Where this thread's slots start, and the column panels it packs into them.
            Packed* const Bt = copy_b ? Bp + static_cast<long>(me) * cp * NR * P::KC : Bp;
            const int pack0 = copy_b ? 0 : cp * me / nt, pack1 = copy_b ? cp : cp * (me + 1) / nt;
            const bool direct_b = b_in_place<P>(g, (rp + grid.tm - 1) / grid.tm);
            const bool direct_a = direct_b && !g.trans_a && c1 - c0 <= kMostColPanelsAInPlace;
            for (int p0 = 0; p0 < g.k; p0 += ks) {
                const int kc = min_int(ks, g.k - p0), kcp = round_up(kc, P::KU);
                // This thread's share of op(B)'s micro-panels (with a 1 x nt grid, its own), unless
                // B is read in place.
                if (!direct_b)
                    for (int jp = pack0; jp < pack1; ++jp)
                        P::pack_b(g, B, p0, kc, j0 + jp * NR, min_int(NR, nc - jp * NR),
                                  Bt + static_cast<long>(jp) * NR * P::KC);
                if (!own_b && !direct_b) {
#pragma omp barrier
                }
                for (int rb = r0; rb < r1; rb += P::MC / MR) {
                    const int i0 = rb * MR, mc = min_int(min_int(r1, rb + P::MC / MR) * MR, g.m) - i0;
                    if (!direct_a) P::pack_a(g, A, i0, mc, p0, kc, Ap);
                    // The micro-panel of B stays in L1 while the rows of the A block stream by.
                    for (int jp = c0; jp < c1; ++jp) {
                        const int j = j0 + jp * NR;
                        const Packed* b = Bt + static_cast<long>(jp) * NR * P::KC;
                        for (int ir = 0; ir < mc; ir += MR) {
                            const Packed* a = Ap + static_cast<long>(ir) * kcp;
                            const bool first = p0 == 0, last = p0 + kc >= g.k;
                            if constexpr (has_direct_b<P>)
                                if (direct_b) {
                                    const BRows rows{B + static_cast<long>(p0) * g.n + j, g.n};
                                    if (direct_a)
                                        tile_slice<P>(g, kcp, first, last,
                                                      ARows{A + static_cast<long>(i0 + ir) * g.k + p0, g.k}, rows,
                                                      i0 + ir, j, S, t, C, bias, pre);
                                    else
                                        tile_slice<P>(g, kcp, first, last, a, rows, i0 + ir, j, S, t, C, bias, pre);
                                    continue;
                                }
                            tile_slice<P>(g, kcp, first, last, a, b, i0 + ir, j, S, t, C, bias, pre);
                        }
                    }
                }
                if (!direct_b && (!own_b || p0 + kc >= g.k)) { // before the next panel of op(B) overwrites this one
#pragma omp barrier
                }
            }
        }
        P::end();
    }
    if (workspace) omp_free(S, omp_default_mem_alloc);
}

// The chunked form (Gemm::kc: the weight gradient of --reproducible-ranks; kernels/tree_sum.hpp):
// every element's K sum is the split tree of the chunks' in-order sums, so a chunk's sum does
// not depend on which rank, or how many threads, computed it. All of K is packed at once, chunk by
// chunk (each padded to the panel's k step on its own, so a chunk never shares a k-pair or an AMX
// row with the next); then per MR x NR tile the micro-kernel runs once per chunk into a tile
// buffer, and the buffers merge in L1 as the tree says (a carry stack of at most log2(chunks) + 1
// tiles), so C is written once. The threads split the tiles as gemm_blocked's do.
template <class P, class O>
void gemm_chunked(const Gemm g, const typename P::Elem* A, const typename P::Elem* B, O* C)
{
    using Packed = typename P::Packed;
    constexpr int MR = P::MR, NR = P::NR, kLevels = 24;
    const int nch = g.kc.count;
    // Chunk c: rows [k0[c], k0[c + 1]) of K, packed at kp[c] (a multiple of KU) in the panels.
    int* k0 = static_cast<int*>(omp_alloc(sizeof(int) * (2 * nch + 2), omp_default_mem_alloc));
    int* kp = k0 + nch + 1;
    kp[0] = 0;
    for (int c = 0; c <= nch; ++c) k0[c] = static_cast<int>(chunk_row(g.kc, c));
    for (int c = 0; c < nch; ++c) kp[c + 1] = kp[c] + round_up(k0[c + 1] - k0[c], P::KU);
    const long kpack = kp[nch];
    const int rp = (g.m + MR - 1) / MR;
    Packed* Bp = static_cast<Packed*>(omp_alloc(sizeof(Packed) * (kpack * P::NC + 1), omp_default_mem_alloc));
#pragma omp parallel
    {
        Packed* Ap = static_cast<Packed*>(omp_alloc(sizeof(Packed) * (kpack * P::MC + 1), omp_default_mem_alloc));
        alignas(64) float t[kLevels][MR * NR]; // the carry stack of tile sums (t[depth]: the newest)
        const int nt = omp_get_num_threads(), me = omp_get_thread_num();
        P::begin();
        for (int j0 = 0; j0 < g.n; j0 += P::NC) {
            const int nc = min_int(g.n - j0, P::NC), cp = (nc + NR - 1) / NR;
            const Grid grid = thread_grid(rp, cp, nt);
            const int ti = me / grid.tn, tj = me % grid.tn;
            const int r0 = rp * ti / grid.tm, r1 = rp * (ti + 1) / grid.tm;
            const int c0 = cp * tj / grid.tn, c1 = cp * (tj + 1) / grid.tn;
            // op(B)'s micro-panels of every chunk: chunk c's at kp[c] * NR within each panel.
            for (int jp = cp * me / nt; jp < cp * (me + 1) / nt; ++jp)
                for (int c = 0; c < nch; ++c)
                    P::pack_b(g, B, k0[c], k0[c + 1] - k0[c], j0 + jp * NR, min_int(NR, nc - jp * NR),
                              Bp + static_cast<long>(jp) * NR * kpack + static_cast<long>(kp[c]) * NR);
#pragma omp barrier
            for (int rb = r0; rb < r1; rb += P::MC / MR) {
                const int i0 = rb * MR, mc = min_int(min_int(r1, rb + P::MC / MR) * MR, g.m) - i0;
                for (int c = 0; c < nch; ++c)
                    P::pack_a(g, A, i0, mc, k0[c], k0[c + 1] - k0[c], Ap + static_cast<long>(kp[c]) * P::MC);
                for (int jp = c0; jp < c1; ++jp)
                    for (int ir = 0; ir < mc; ir += MR) {
                        const Packed* b = Bp + static_cast<long>(jp) * NR * kpack;
                        int depth = 0;
                        for (int c = 0; c < nch; ++c) {
                            const int kcp = kp[c + 1] - kp[c];
                            const Packed* ac = Ap + static_cast<long>(kp[c]) * P::MC + static_cast<long>(ir) * kcp;
                            const Packed* bc = b + static_cast<long>(kp[c]) * NR;
                            long k = c + 1; // TreeSum's carry: as many merges as k has trailing zero bits
                            if (P::CIN_LAST && (k & 1) == 0) {
                                // The first merge in the micro-kernel, which adds cin to the chunk's
                                // finished sum: t[top] + chunk, the same bits as the loop below.
                                P::micro(kcp, ac, bc, t[depth - 1], NR, t[depth - 1], NR);
                                k >>= 1;
                            } else {
                                P::micro(kcp, ac, bc, nullptr, NR, t[depth++], NR);
                            }
                            for (; (k & 1) == 0; k >>= 1, --depth)
                                for (int e = 0; e < MR * NR; ++e) t[depth - 2][e] += t[depth - 1][e];
                        }
                        for (int d = depth - 2; d >= 0; --d) // TreeSum's total: the right edge first
                            for (int e = 0; e < MR * NR; ++e) t[d][e] += t[d + 1][e];
                        const int i = i0 + ir, j = j0 + jp * NR;
                        epilogue_tile<Act::identity>(g, t[0], NR, i, min_int(MR, g.m - i), j, min_int(NR, g.n - j), C,
                                                     nullptr, nullptr);
                    }
            }
#pragma omp barrier // before the next panel of op(B) overwrites this one
        }
        P::end();
        omp_free(Ap, omp_default_mem_alloc);
    }
    omp_free(Bp, omp_default_mem_alloc);
    omp_free(k0, omp_default_mem_alloc);
}

template <class P, class O>
void gemm_host(const GemmArgs& g, const typename P::Elem* A, const typename P::Elem* B, O* C, const float* bias,
               float* pre)
{
    if (g.kc.chunks > 0)
        gemm_chunked<P>(g, A, B, C);
    else
        gemm_blocked<P>(g, A, B, C, bias, pre);
}

template <class O>
void gemm_league_cpu(const GemmArgs g, const float* A, const float* B, O* C, const float* bias, float* pre)
{
    gemm_host<FloatPanels<float>>(g, A, B, C, bias, pre);
}

// The bf16 operands on the path the host chose before the launch (g.path, host_gemm_path).
template <class O>
void gemm_league_cpu(const GemmArgs g, const bf16* A, const bf16* B, O* C, const float* bias, float* pre)
{
#if OMPML_GEMM_X86
    if (g.path == HostGemm::amx) {
        gemm_host<AmxPanels>(g, A, B, C, bias, pre);
        return;
    }
    if (g.path == HostGemm::avx512bf16) {
        gemm_host<Bf16DotPanels>(g, A, B, C, bias, pre);
        return;
    }
#endif
    gemm_host<FloatPanels<bf16>>(g, A, B, C, bias, pre);
}

// The nvptx64 bodies (gemm_omp.hpp), one per tiling. maybe_unused: only the nvptx64
// compilation calls them (through the variants below). Explicitly instantiated for every
// operand and output type: the nvptx64 pass does not instantiate a variant that is named only in
// a `declare variant` (the link then misses it).
template <class T, class O>
[[maybe_unused]] void gemm_league_nvptx(const GemmArgs g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    gemm_league_tiled<4, 16>(g, A, B, C, bias, pre);
}
template <class T, class O>
[[maybe_unused]] void gemm_league_nvptx_large(const GemmArgs g, const T* A, const T* B, O* C, const float* bias,
                                              float* pre)
{
    gemm_league_tiled<8, 8>(g, A, B, C, bias, pre);
}
template void gemm_league_nvptx(GemmArgs, const float*, const float*, float*, const float*, float*);
template void gemm_league_nvptx(GemmArgs, const float*, const float*, bf16*, const float*, float*);
template void gemm_league_nvptx(GemmArgs, const bf16*, const bf16*, float*, const float*, float*);
template void gemm_league_nvptx(GemmArgs, const bf16*, const bf16*, bf16*, const float*, float*);
template void gemm_league_nvptx_large(GemmArgs, const float*, const float*, float*, const float*, float*);
template void gemm_league_nvptx_large(GemmArgs, const float*, const float*, bf16*, const float*, float*);
template void gemm_league_nvptx_large(GemmArgs, const bf16*, const bf16*, float*, const float*, float*);
template void gemm_league_nvptx_large(GemmArgs, const bf16*, const bf16*, bf16*, const float*, float*);

// The bodies of the target regions: the nvptx64 variants on NVIDIA GPUs, the portable body
// elsewhere (the large-tile region is only launched on a GPU).
#pragma omp declare variant(gemm_league_nvptx<T, O>) match(device = {arch(nvptx64)})
template <class T, class O>
void gemm_league(const GemmArgs g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    gemm_league_cpu(g, A, B, C, bias, pre);
}
#pragma omp declare variant(gemm_league_nvptx_large<T, O>) match(device = {arch(nvptx64)})
template <class T, class O>
void gemm_league_large(const GemmArgs g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    gemm_league_cpu(g, A, B, C, bias, pre);
}

#pragma omp end declare target

// The chunked form on a GPU (Gemm::kc; gemm_chunked is the host's): each chunk's product, the
// tiled body over that chunk's rows, into its slice of a device workspace, then per element the
// split tree of the slices and the epilogue. K's rows are the stored operands' rows (trans_a, not
// trans_b), so a chunk is a contiguous block of both. GPU memory bandwidth makes the extra pass
// over the slices cheap next to a host's.
template <class T, class O>
void gemm_chunks_gpu(const GemmArgs& g, const T* A, const T* B, O* C)
{
    // A: (K, M); B: (K, N); C, ws slices: (M, N)
    const long MN = static_cast<long>(g.m) * g.n;
    const int nch = g.kc.count;
    float* ws = static_cast<float*>(omp_memory().allocate(sizeof(float) * MN * nch));
    for (int c = 0; c < nch; ++c) {
        const long k0 = chunk_row(g.kc, c);
        GemmArgs gc = g;
        gc.kc = KChunks{};
        gc.k = static_cast<int>(chunk_row(g.kc, c + 1) - k0); // 0 rows: the slice is zeros
        gc.alpha = 1.0f;
        const T* Ac = A + k0 * g.m;
        const T* Bc = B + k0 * g.n;
        float* slice = ws + c * MN;
        const int nteams = static_cast<int>(std::min(gemm_tiles(gc, 4), kMaxTeams));
#pragma omp target teams num_teams(nteams) thread_limit(TEAM) is_device_ptr(Ac, Bc, slice)
        gemm_league(gc, Ac, Bc, slice, static_cast<const float*>(nullptr), static_cast<float*>(nullptr));
    }
    const Gemm ge = g; // the epilogue of the tree's total (alpha; beta 0, plain)
#pragma omp target teams distribute parallel for is_device_ptr(ws, C)
    for (long i = 0; i < MN; ++i) {
        TreeSum<float> t;
        for (int c = 0; c < nch; ++c) t.add(ws[c * MN + i]);
        gemm_epilogue(ge, t.total(), i, static_cast<int>(i % ge.n), C, nullptr, nullptr);
    }
    omp_memory().deallocate(ws);
}

// The launch, for every operand type T and output type O.
template <class T, class O>
void gemm_launch(const Gemm& params, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    // A: (M, K) or (K, M); B: (K, N) or (N, K); C, pre: (M, N); bias: (N)
    const bool gpu = omp_device_is_gpu(); // the nvptx64 bodies run there
    GemmArgs g;
    static_cast<Gemm&>(g) = params;
    g.path = std::is_same_v<T, bf16> && !gpu ? host_gemm_path() : HostGemm::fp32;
    // GPU: one team of TEAM threads per tile; 128 x 128 tiles where there are enough of them.
    // CPU: one team of all threads (libomp's default layout; more teams would only split the
    // cores).
    if (gpu && g.kc.chunks > 0) {
        gemm_chunks_gpu(g, A, B, C);
        return;
    }
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

} // namespace
HostGemm host_gemm_path()
{
    const HostGemm best = cpu_has_amx() ? HostGemm::amx : cpu_has_avx512bf16() ? HostGemm::avx512bf16 : HostGemm::fp32;
    const char* env = std::getenv("OMPML_HOST_GEMM");
    if (env == nullptr || *env == '\0') return best;
    const std::string want = env;
    const std::string has =
        std::string(cpu_has_amx() ? "amx, " : "") + (cpu_has_avx512bf16() ? "avx512bf16, " : "") + "fp32";
    for (const HostGemm p : {HostGemm::amx, HostGemm::avx512bf16, HostGemm::fp32}) {
        if (want != host_gemm_name(p)) continue;
        const bool ok = p == HostGemm::fp32 || (p == HostGemm::amx ? cpu_has_amx() : cpu_has_avx512bf16());
        require(ok, "OMPML_HOST_GEMM=" + want + ": this CPU cannot run that path (it has: " + has + ")");
        return p;
    }
    throw Error("OMPML_HOST_GEMM='" + want + "': unknown path (known: amx, avx512bf16, fp32; this CPU has: " + has +
                ")");
}

const char* host_gemm_name(HostGemm p)
{
    switch (p) {
    case HostGemm::amx: return "amx";
    case HostGemm::avx512bf16: return "avx512bf16";
    default: return "fp32";
    }
}

template <>
void gemm<Impl::omp>(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    gemm_launch(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::omp>(const Gemm& g, const float* A, const float* B, bf16* C, const float* bias, float* pre)
{
    gemm_launch(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::omp>(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias, float* pre)
{
    gemm_launch(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::omp>(const Gemm& g, const bf16* A, const bf16* B, bf16* C, const float* bias, float* pre)
{
    gemm_launch(g, A, B, C, bias, pre);
}

} // namespace ompml
