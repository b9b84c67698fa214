// gemm, sequential reference: the textbook triple loop with a double accumulator, for float
// and for bf16 operands (widened exactly to float, then multiplied in double: the exact sum of
// the bf16 products up to the final rounding), then the shared epilogue. The oracle for tests;
// readable over fast.
#include "kernels/gemm.hpp"

namespace ompml {
namespace {

template <class T, class O>
void gemm_ref(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    for (int i = 0; i < g.m; ++i) {
        for (int j = 0; j < g.n; ++j) {
            double acc = 0.0;
            for (int p = 0; p < g.k; ++p) {
                const float a =
                    to_float(g.trans_a ? A[static_cast<long>(p) * g.m + i] : A[static_cast<long>(i) * g.k + p]);
                const float b =
                    to_float(g.trans_b ? B[static_cast<long>(j) * g.k + p] : B[static_cast<long>(p) * g.n + j]);
                acc += static_cast<double>(a) * b;
            }
            gemm_epilogue(g, static_cast<float>(acc), static_cast<long>(i) * g.n + j, j, C, bias, pre);
        }
    }
}

} // namespace

template <>
void gemm<Impl::ref>(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    gemm_ref(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::ref>(const Gemm& g, const float* A, const float* B, bf16* C, const float* bias, float* pre)
{
    gemm_ref(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::ref>(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias, float* pre)
{
    gemm_ref(g, A, B, C, bias, pre);
}
template <>
void gemm<Impl::ref>(const Gemm& g, const bf16* A, const bf16* B, bf16* C, const float* bias, float* pre)
{
    gemm_ref(g, A, B, C, bias, pre);
}

} // namespace ompml
