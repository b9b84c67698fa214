// Column sum, sequential reference (double accumulators).
#include "kernels/reduce.hpp"

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

} // namespace ompml
