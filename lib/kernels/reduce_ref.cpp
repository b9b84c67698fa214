// Column sum, sequential reference (double accumulators; with chunks, each chunk's sum so,
// rounded to float, and the chunks added in the split tree).
#include "kernels/reduce.hpp"

namespace ompml {
namespace {

template <class O>
void col_sum_ref(int rows, int cols, const float* X, O* out, const KChunks& kc)
{
    for (int c = 0; c < cols; ++c) {
        const auto sum = [&](long lo, long hi) {
            double s = 0.0;
            for (long r = lo; r < hi; ++r) s += X[r * cols + c];
            return static_cast<float>(s);
        };
        float total = 0.0f;
        if (kc.chunks == 0) {
            total = sum(0, rows);
        } else {
            TreeSum<float> t;
            for (int ch = 0; ch < kc.count; ++ch) t.add(sum(chunk_row(kc, ch), chunk_row(kc, ch + 1)));
            total = t.total();
        }
        out[c] = from_float<O>(total);
    }
}

} // namespace

template <>
void col_sum<Impl::ref>(int rows, int cols, const float* X, float* out, const KChunks& kc)
{
    col_sum_ref(rows, cols, X, out, kc);
}
template <>
void col_sum<Impl::ref>(int rows, int cols, const float* X, bf16* out, const KChunks& kc)
{
    col_sum_ref(rows, cols, X, out, kc);
}

} // namespace ompml
