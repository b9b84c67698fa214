// Column sum, sequential reference (double accumulators).
#include "kernels/reduce.hpp"

namespace ompml {
namespace {

template <class O>
void col_sum_ref(int rows, int cols, const float* X, O* out)
{
    for (int c = 0; c < cols; ++c) {
        double s = 0.0;
        for (int r = 0; r < rows; ++r) s += X[static_cast<long>(r) * cols + c];
        out[c] = from_float<O>(static_cast<float>(s));
    }
}

} // namespace

template <>
void col_sum<Impl::ref>(int rows, int cols, const float* X, float* out)
{
    col_sum_ref(rows, cols, X, out);
}
template <>
void col_sum<Impl::ref>(int rows, int cols, const float* X, bf16* out)
{
    col_sum_ref(rows, cols, X, out);
}

} // namespace ompml
