// cuBLAS SGEMM as the upper anchor for ompml-bench: how fast a vendor library multiplies the
// same shapes on the same GPU. Kept out of the Backend interface on purpose (it is a yardstick,
// not a backend); only in builds with cuBLAS (target ompml_cublas, define OMPML_WITH_CUBLAS).
// Row-major, same conventions as Gemm (lib/kernels/gemm.hpp); pointers are CUDA device pointers.
#pragma once

namespace ompml {

// C = alpha * op(A) op(B) + beta * C, row-major; FP32 math (no TF32), so it computes what the
// ompml kernels compute. Queued on the default stream.
//   A: (M, K), or (K, M) when trans_a;  B: (K, N), or (N, K) when trans_b;  C: (M, N)
void cublas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B,
                  float beta, float* C);

struct CublasTiming {
    double min_ms = 0.0, avg_ms = 0.0, max_ms = 0.0; // per call, over the timed repetitions
};

// Times cublas_sgemm on freshly allocated device operands (alpha 1, beta 0): `warmup` calls
// dropped, then `reps` calls timed one by one with CUDA events.
CublasTiming cublas_sgemm_time(bool trans_a, bool trans_b, int M, int N, int K, int reps = 20, int warmup = 3);

} // namespace ompml
