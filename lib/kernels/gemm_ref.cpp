// gemm, sequential reference: the textbook triple loop with a double accumulator, for float
// and for bf16 operands (widened exactly to float, then multiplied in double: the exact sum of
// the bf16 products up to the final rounding), then the shared epilogue. With K in chunks
// (Gemm::kc), each chunk's sum so, rounded to float, and the chunks added in the split tree. The
// oracle for tests; readable over fast.
#include "kernels/gemm.hpp"

namespace ompml {
namespace {

template <class T, class O>
void gemm_ref(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre)
{
    for (int i = 0; i < g.m; ++i) {
        for (int j = 0; j < g.n; ++j) {
            // The products of k in [lo, hi), summed in double, rounded to float once.
            const auto k_sum = [&](long lo, long hi) {
                double acc = 0.0;
                for (long p = lo; p < hi; ++p) {
                    const float a = to_float(g.trans_a ? A[p * g.m + i] : A[static_cast<long>(i) * g.k + p]);
                    const float b = to_float(g.trans_b ? B[static_cast<long>(j) * g.k + p] : B[p * g.n + j]);
                    acc += static_cast<double>(a) * b;
                }
                return static_cast<float>(acc);
            };
            float acc = 0.0f;
            if (g.kc.chunks == 0) {
                acc = k_sum(0, g.k);
            } else { // each chunk's sum, then the split tree over chunks (kernels/tree_sum.hpp)
                TreeSum<float> t;
                for (int c = 0; c < g.kc.count; ++c) t.add(k_sum(chunk_row(g.kc, c), chunk_row(g.kc, c + 1)));
                acc = t.total();
            }
            gemm_epilogue(g, acc, static_cast<long>(i) * g.n + j, j, C, bias, pre);
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
