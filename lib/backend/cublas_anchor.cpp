// cuBLAS SGEMM anchor (see cublas_anchor.hpp). cuBLAS is column-major: a row-major (R, C)
// matrix is the column-major (C, R) one, so row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T, i.e. cublasSgemm with the operands swapped and
// m = N, n = M. Host-only code, compiled by the C++ compiler.
#include "backend/cublas_anchor.hpp"

#include "core/cuda_check.hpp"

#include <cublas_v2.h>

#include <algorithm>
#include <vector>

// The cuBLAS check macro: same reporter shape as CUDA_CHECK, with cuBLAS's own status text.
#define CUBLAS_CHECK(call)                                                                 \
    do {                                                                                   \
        const cublasStatus_t ompml_cublas_st_ = (call);                                    \
        if (ompml_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                     \
            ::ompml::fail(__FILE__, __LINE__, #call, cublasGetStatusString(ompml_cublas_st_)); \
    } while (0)

namespace ompml {
namespace {

// One handle for the process, created on first use (creation costs milliseconds), never
// destroyed (destroying at exit races the runtime's teardown).
cublasHandle_t handle()
{
    static const cublasHandle_t h = [] {
        cublasHandle_t created = nullptr;
        CUBLAS_CHECK(cublasCreate(&created));
        // Plain FP32: TF32 tensor cores would be faster but compute something else.
        CUBLAS_CHECK(cublasSetMathMode(created, CUBLAS_PEDANTIC_MATH));
        return created;
    }();
    return h;
}

} // namespace

void cublas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B,
                  float beta, float* C)
{
    // Leading dimensions of the row-major storage: a row-major (R, C) matrix has ld = C.
    const int lda = trans_a ? M : K; // A stored (K, M) or (M, K)
    const int ldb = trans_b ? K : N; // B stored (N, K) or (K, N)
    CUBLAS_CHECK(cublasSgemm(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                             &alpha, B, ldb, A, lda, &beta, C, N));
}

CublasTiming cublas_sgemm_time(bool trans_a, bool trans_b, int M, int N, int K, int reps, int warmup)
{
    require(M >= 1 && N >= 1 && K >= 1 && reps >= 1 && warmup >= 0,
            "cublas_sgemm_time: need M, N, K, reps >= 1 and warmup >= 0");
    const auto device_floats = [](std::size_t n) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, sizeof(float) * n));
        return static_cast<float*>(p);
    };
    float* A = device_floats(static_cast<std::size_t>(M) * K); // (M, K) or (K, M)
    float* B = device_floats(static_cast<std::size_t>(K) * N); // (K, N) or (N, K)
    float* C = device_floats(static_cast<std::size_t>(M) * N); // (M, N)
    // Byte 0x3c everywhere: small finite floats (~0.0115), so no denormal or NaN slow paths.
    CUDA_CHECK(cudaMemset(A, 0x3c, sizeof(float) * M * static_cast<std::size_t>(K)));
    CUDA_CHECK(cudaMemset(B, 0x3c, sizeof(float) * K * static_cast<std::size_t>(N)));
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));

    for (int i = 0; i < warmup; ++i) cublas_sgemm(trans_a, trans_b, M, N, K, 1.0f, A, B, 0.0f, C);
    std::vector<double> ms(reps);
    for (int i = 0; i < reps; ++i) {
        CUDA_CHECK(cudaEventRecord(start));
        cublas_sgemm(trans_a, trans_b, M, N, K, 1.0f, A, B, 0.0f, C);
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms[i] = t;
    }

    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    CUDA_CHECK(cudaFree(A));
    CUDA_CHECK(cudaFree(B));
    CUDA_CHECK(cudaFree(C));
    CublasTiming t;
    t.min_ms = *std::min_element(ms.begin(), ms.end());
    t.max_ms = *std::max_element(ms.begin(), ms.end());
    for (double v : ms) t.avg_ms += v / reps;
    return t;
}

} // namespace ompml
