// cuBLAS SGEMM, the GPU upper anchor of ompml-bench: how fast a vendor library multiplies the
// same shapes on the same GPU. Not a backend (it is a yardstick); only in builds with cuBLAS
// (define OMPML_WITH_CUBLAS, set on ompml_bench). The anchor itself is made by make_anchor
// ("cublas"); this is the call it makes, for anything else that wants cuBLAS's figure.
// Row-major, same conventions as Gemm (lib/kernels/gemm.hpp); pointers are CUDA device pointers.
#pragma once

namespace ompml::bench {

// C = alpha * op(A) op(B) + beta * C, row-major; FP32 math (no TF32), so it computes what the
// ompml kernels compute. Queued on the default stream.
//   A: (M, K), or (K, M) when trans_a;  B: (K, N), or (N, K) when trans_b;  C: (M, N)
void cublas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B,
                  float beta, float* C);

} // namespace ompml::bench
