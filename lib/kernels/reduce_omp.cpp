// Row/column reductions over a row-major (rows, cols) matrix as OpenMP target kernels: one
// thread per output element. col_sum: neighbouring threads read neighbouring columns (coalesced
// on a GPU). row_max/row_sum: a thread walks its own row; the inner `simd` reduction lets host
// cores vectorize it (a float sum or max cannot vectorize in order), and is sequential on nvptx.
//
// thread_limit(64): these kernels have few work items (a batch of rows, a layer's columns:
// hundreds to a few thousand), so smaller GPU teams spread them over more SMs than the default
// team size would. On host cores thread_limit is only an upper bound (teams keep
// OMP_NUM_THREADS threads when that is smaller), so the host layout is unchanged.
// No `simd` on the combined construct: see blas1_omp.cpp.
#include "kernels/reduce.hpp"

namespace ompml {
namespace {
constexpr int kSmallTeam = 64;
}

template <>
void col_sum<Impl::omp>(int rows, int cols, const float* X, float* out, float beta)
{
    // X: (rows, cols), out: (cols)
#pragma omp target teams distribute parallel for thread_limit(kSmallTeam) is_device_ptr(X, out)
    for (int c = 0; c < cols; ++c) {
        float s = 0.0f;
        for (int r = 0; r < rows; ++r) s += X[static_cast<long>(r) * cols + c];
        out[c] = (beta == 0.0f ? 0.0f : beta * out[c]) + s; // beta == 0: never read out (may be garbage)
    }
}

template <>
void row_max<Impl::omp>(int rows, int cols, const float* X, float* out)
{
    // X: (rows, cols), out: (rows)
#pragma omp target teams distribute parallel for thread_limit(kSmallTeam) is_device_ptr(X, out)
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<long>(r) * cols; // (cols)
        float m = x[0];
        for (int c = 1; c < cols; ++c) m = x[c] > m ? x[c] : m;
        out[r] = m;
    }
}

template <>
void row_sum<Impl::omp>(int rows, int cols, const float* X, float* out)
{
    // X: (rows, cols), out: (rows)
#pragma omp target teams distribute parallel for thread_limit(kSmallTeam) is_device_ptr(X, out)
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<long>(r) * cols; // (cols)
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < cols; ++c) s += x[c];
        out[r] = s;
    }
}

} // namespace ompml
