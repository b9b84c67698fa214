// cuBLAS SGEMM anchor (see cublas_anchor.hpp). cuBLAS is column-major: a row-major (R, C)
// matrix is the column-major (C, R) one, so row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T, i.e. cublasSgemm with the operands swapped and
// m = N, n = M. Host-only code, compiled by the C++ compiler. Operands live in the cuda
// backend's memory (cudaMalloc on the current device), the inputs the backends get.
#include "bench/cublas_anchor.hpp"

#include "backend/backend.hpp"
#include "backend/backend_cuda.hpp"
#include "bench/anchors.hpp"
#include "core/cuda_check.hpp"

#include <cublas_v2.h>

// The cuBLAS check macro: same reporter shape as CUDA_CHECK, with cuBLAS's own status text.
#define CUBLAS_CHECK(call)                                                                                             \
    do {                                                                                                               \
        const cublasStatus_t ompml_cublas_st_ = (call);                                                                \
        if (ompml_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                                 \
            ::ompml::fail(__FILE__, __LINE__, #call, cublasGetStatusString(ompml_cublas_st_));                         \
    } while (0)

namespace ompml::bench {
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

class CublasAnchor final : public Anchor {
public:
    const char* name() const override { return "cublas"; }
    std::string device() const override { return cuda_->device() + " [GPU] (cuBLAS cublas_sgemm, FP32)"; }
    bool on_gpu() const override { return true; }
    const MemorySpace& memory() const override { return cuda_->memory(); }
    void synchronize() const override { cuda_->synchronize(); }
    void gemm(const Gemm& g, const float* A, const float* B, float* C) override
    {
        require(g.act == Act::identity, "cublas anchor: gemm without an activation only");
        cublas_sgemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, A, B, g.beta, C);
    }

private:
    std::unique_ptr<Backend> cuda_ = make_backend("cuda"); // owns the device memory space
};

} // namespace

void cublas_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B,
                  float beta, float* C)
{
    // Leading dimensions of the row-major storage: a row-major (R, C) matrix has ld = C.
    const int lda = trans_a ? M : K; // A stored (K, M) or (M, K)
    const int ldb = trans_b ? K : N; // B stored (N, K) or (K, N)
    CUBLAS_CHECK(cublasSgemm(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                             K, &alpha, B, ldb, A, lda, &beta, C, N));
}

std::unique_ptr<Anchor> make_cublas_anchor(std::string* why)
{
    std::string reason;
    if (cuda_device_count(&reason) == 0) {
        if (why != nullptr) *why = "cuBLAS anchor skipped: no GPU" + (reason.empty() ? "" : " (" + reason + ")");
        return nullptr;
    }
    return std::make_unique<CublasAnchor>();
}

} // namespace ompml::bench
