// gemm, sequential reference: the textbook triple loop with a double accumulator.
// The oracle for tests; readable over fast.
#include "kernels/gemm.hpp"

namespace ompml {

template <>
void gemm<Impl::ref>(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    for (int i = 0; i < g.m; ++i) {
        for (int j = 0; j < g.n; ++j) {
            double acc = 0.0;
            for (int p = 0; p < g.k; ++p) {
                const float a = g.trans_a ? A[static_cast<long>(p) * g.m + i] : A[static_cast<long>(i) * g.k + p];
                const float b = g.trans_b ? B[static_cast<long>(j) * g.k + p] : B[static_cast<long>(p) * g.n + j];
                acc += static_cast<double>(a) * b;
            }
            float& c = C[static_cast<long>(i) * g.n + j];
            float z = g.alpha * static_cast<float>(acc) + (g.beta == 0.0f ? 0.0f : g.beta * c);
            if (bias != nullptr) z += bias[j];
            if (pre != nullptr) pre[static_cast<long>(i) * g.n + j] = z;
            c = act_forward(g.act, z);
        }
    }
}

} // namespace ompml
