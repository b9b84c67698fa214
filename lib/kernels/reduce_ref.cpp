// Row/column reductions, sequential reference (double accumulators).
#include "kernels/reduce.hpp"

#include <algorithm>

namespace ompml {

template <>
void col_sum<Impl::ref>(int rows, int cols, const float* X, float* out, float beta)
{
    for (int c = 0; c < cols; ++c) {
        double s = 0.0;
        for (int r = 0; r < rows; ++r) s += X[static_cast<long>(r) * cols + c];
        out[c] = (beta == 0.0f ? 0.0f : beta * out[c]) + static_cast<float>(s);
    }
}

template <>
void row_max<Impl::ref>(int rows, int cols, const float* X, float* out)
{
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<long>(r) * cols;
        out[r] = *std::max_element(x, x + cols);
    }
}

template <>
void row_sum<Impl::ref>(int rows, int cols, const float* X, float* out)
{
    for (int r = 0; r < rows; ++r) {
        double s = 0.0;
        for (int c = 0; c < cols; ++c) s += X[static_cast<long>(r) * cols + c];
        out[r] = static_cast<float>(s);
    }
}

} // namespace ompml
