// Row/column reductions as OpenMP target kernels: one thread per output element (columns are
// adjacent in memory, so neighbouring threads read neighbouring addresses).
#include "kernels/reduce.hpp"

namespace ompml {

template <>
void col_sum<Impl::omp>(int rows, int cols, const float* X, float* out, float beta)
{
#pragma omp target teams distribute parallel for is_device_ptr(X, out)
    for (int c = 0; c < cols; ++c) {
        float s = 0.0f;
        for (int r = 0; r < rows; ++r) s += X[static_cast<long>(r) * cols + c];
        out[c] = (beta == 0.0f ? 0.0f : beta * out[c]) + s;
    }
}

template <>
void row_max<Impl::omp>(int rows, int cols, const float* X, float* out)
{
#pragma omp target teams distribute parallel for is_device_ptr(X, out)
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<long>(r) * cols;
        float m = x[0];
        for (int c = 1; c < cols; ++c) m = x[c] > m ? x[c] : m;
        out[r] = m;
    }
}

template <>
void row_sum<Impl::omp>(int rows, int cols, const float* X, float* out)
{
#pragma omp target teams distribute parallel for is_device_ptr(X, out)
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<long>(r) * cols;
        float s = 0.0f;
        for (int c = 0; c < cols; ++c) s += x[c];
        out[r] = s;
    }
}

} // namespace ompml
