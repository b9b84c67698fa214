// gemm as an OpenMP target kernel: one thread per element of C (first version).
#include "kernels/gemm.hpp"

namespace ompml {

template <>
void gemm<Impl::omp>(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    const int M = g.m, N = g.n, K = g.k;
    const bool ta = g.trans_a, tb = g.trans_b;
    const float alpha = g.alpha, beta = g.beta;
    const Act act = g.act;
#pragma omp target teams distribute parallel for collapse(2) is_device_ptr(A, B, C, bias, pre)
    for (int i = 0; i < M; ++i) {
        for (int j = 0; j < N; ++j) {
            float acc = 0.0f;
            for (int p = 0; p < K; ++p) {
                const float a = ta ? A[static_cast<long>(p) * M + i] : A[static_cast<long>(i) * K + p];
                const float b = tb ? B[static_cast<long>(j) * K + p] : B[static_cast<long>(p) * N + j];
                acc += a * b;
            }
            float& c = C[static_cast<long>(i) * N + j];
            float z = alpha * acc + (beta == 0.0f ? 0.0f : beta * c);
            if (bias != nullptr) z += bias[j];
            if (pre != nullptr) pre[static_cast<long>(i) * N + j] = z;
            c = act_forward(act, z);
        }
    }
}

} // namespace ompml
