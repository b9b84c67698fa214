// Vector kernels as OpenMP target kernels over device pointers.
#include "kernels/blas1.hpp"

namespace ompml {

template <>
void fill<Impl::omp>(std::size_t n, float* X, float value)
{
#pragma omp target teams distribute parallel for simd is_device_ptr(X)
    for (std::size_t i = 0; i < n; ++i) X[i] = value;
}

template <>
void scale<Impl::omp>(std::size_t n, float* X, float a)
{
#pragma omp target teams distribute parallel for simd is_device_ptr(X)
    for (std::size_t i = 0; i < n; ++i) X[i] *= a;
}

template <>
void axpy<Impl::omp>(std::size_t n, float a, const float* X, float* Y)
{
#pragma omp target teams distribute parallel for simd is_device_ptr(X, Y)
    for (std::size_t i = 0; i < n; ++i) Y[i] += a * X[i];
}

template <>
double sum_squares<Impl::omp>(std::size_t n, const float* X)
{
    double s = 0.0;
#pragma omp target teams distribute parallel for simd reduction(+ : s) is_device_ptr(X) map(tofrom : s)
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(X[i]) * X[i];
    return s;
}

} // namespace ompml
