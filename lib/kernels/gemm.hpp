// gemm: C = epilogue(alpha * op(A) * op(B) + beta * C), row-major, any M, N, K >= 1.
// op(A) is (M, K): A is stored (M, K), or (K, M) when trans_a.
// op(B) is (K, N): B is stored (K, N), or (N, K) when trans_b.
//
// The epilogue of each element, z = alpha * acc + beta * C (beta == 0: C is never read, so it
// may hold anything, NaN included, as in BLAS):
//   forward (act_backward false): z += bias[j] where bias (N) is non-null; pre[idx] = z where
//     pre (M, N) is non-null (the pre-activation activation_backward needs); C = act(z);
//   backward (act_backward true): C = act_backward_elem(act, pre[idx], z): the dX gemm of a
//     layer with the previous layer's activation backward fused in (dX = (dZ W) * act'(Z), relu a
//     select; kernels/activation.hpp), pre (M, N) holding Z and read; bias must be null.
// The arithmetic of each step is the same in every backend and body (so the same bits as the
// separate activation_backward pass would give).
//
// Types, chosen at compile time: T, the operands A and B (float, or bf16 for mixed precision:
// the products accumulated in float, the epilogue in float on the full sum), and O, the output
// C (float, or bf16: the result rounded once, to nearest even, as it is stored: the next
// layer's bf16 input, or a weight gradient in bf16 for the ranks to exchange). With O = bf16,
// beta must be 0. pre and bias are float.
#pragma once

#include "core/bf16.hpp"
#include "kernels/activation.hpp"
#include "kernels/impl.hpp"
#include "kernels/tree_sum.hpp"

namespace ompml {

struct Gemm {
    bool trans_a = false;
    bool trans_b = false;
    int m = 0, n = 0, k = 0;
    float alpha = 1.0f;
    float beta = 0.0f;
    Act act = Act::identity;
    bool act_backward = false; // the epilogue applies act's backward to z, reading pre (see above)
    // K cut into the chunks of a global batch (kernels/tree_sum.hpp): each element's K sum is the
    // split tree of the chunks' in-order sums, so a rank's share of the batch gives a subtree of
    // the whole batch's sum (--reproducible-ranks). For the weight gradient's product only:
    // trans_a and not trans_b (K is the rows of both stored operands), beta 0, no bias, no pre,
    // identity activation. chunks == 0: one in-order sum over K.
    KChunks kc;
};

// The GPU gemms (omp on nvptx64 and cuda) use 128 x 128 tiles of C with 8 x 8 per thread when a
// product has at least this many such tiles (about one per SM of an A100 or H100: 108 to 132),
// else 64 x 64 tiles with 4 x 4 per thread (more teams for the skinny products of MLP layers).
// One fixed rule for both, so that --compare times the same tiling, and the tiling (hence the
// result's bits) does not depend on the GPU's SM count.
constexpr long kGemmLargeTiles = 128;

// How the omp gemm runs bf16 operands on host cores: AMX tiles (TDPBF16PS), AVX512-BF16 dot
// products (VDPBF16PS), or widened exactly into the fp32 micro-kernel. host_gemm_path() is the
// best the CPU has, in that order, unless OMPML_HOST_GEMM=amx|avx512bf16|fp32 names one: an
// unknown name, or a path this CPU lacks, throws Error naming the variable, the value and what
// the CPU offers. The float gemm has one host path. Read on every call (tests switch it).
enum class HostGemm { amx, avx512bf16, fp32 };
HostGemm host_gemm_path();
const char* host_gemm_name(HostGemm p); // "amx", "avx512bf16", "fp32"

#pragma omp declare target
// One element's epilogue (see the top of this file) for the full K sum acc of element
// idx = i N + j: stores C[idx]. The bodies that finish element by element (ref, the GPU ones)
// share it; the host's packed-panel body runs the same steps row by row (gemm_omp.cpp).
template <class O>
OMPML_HD inline void gemm_epilogue(const Gemm& g, float acc, long idx, int j, O* C, const float* bias, float* pre)
{
    float z = g.alpha * acc + (g.beta == 0.0f ? 0.0f : g.beta * to_float(C[idx]));
    float c;
    if (g.act_backward) {
        c = act_backward_elem(g.act, pre[idx], z);
    } else {
        if (bias != nullptr) z += bias[j];
        if (pre != nullptr) pre[idx] = z;
        c = act_forward(g.act, z);
    }
    C[idx] = from_float<O>(c);
}
#pragma omp end declare target

//   A: (M, K) or (K, M); B: (K, N) or (N, K); C, pre: (M, N); bias: (N)
template <Impl I, class T, class O>
void gemm(const Gemm& g, const T* A, const T* B, O* C, const float* bias = nullptr, float* pre = nullptr);

} // namespace ompml
