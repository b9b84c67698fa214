// gemm: C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, any M, N, K >= 1.
// op(A) is (M, K): A is stored (M, K), or (K, M) when trans_a.
// op(B) is (K, N): B is stored (K, N), or (N, K) when trans_b.
// bias (N) is added to every row when non-null; when pre is non-null it receives the value
// before the activation (what activation_backward needs), (M, N).
//
// Mixed precision (the bf16 overload): A and B are bf16, their products are accumulated in
// float, and the epilogue runs in float on the full sum, as in the float gemm; C and pre are
// float. C16 (both overloads), when non-null, receives bf16(C) as well, (M, N), written by the
// epilogue instead of a separate conversion pass: the next layer's bf16 input, or a weight
// gradient in bf16 for the ranks to exchange (--grad-dtype bf16). With C16 and beta == 0, C may
// be null: then only C16 is written (the float result never goes to memory).
#pragma once

#include "core/bf16.hpp"
#include "kernels/activation.hpp"
#include "kernels/impl.hpp"

namespace ompml {

struct Gemm {
    bool trans_a = false;
    bool trans_b = false;
    int m = 0, n = 0, k = 0;
    float alpha = 1.0f;
    float beta = 0.0f;
    Act act = Act::identity;
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

template <Impl I>
void gemm(const Gemm& g, const float* A, const float* B, float* C, const float* bias = nullptr, float* pre = nullptr,
          bf16* C16 = nullptr);

template <Impl I>
void gemm(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias = nullptr, float* pre = nullptr,
          bf16* C16 = nullptr);

} // namespace ompml
