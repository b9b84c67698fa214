// Vector kernels, sequential reference.
#include "kernels/blas1.hpp"

namespace ompml {

template <>
void fill<Impl::ref>(std::size_t n, float* X, float value)
{
    for (std::size_t i = 0; i < n; ++i) X[i] = value;
}

template <>
void scale<Impl::ref>(std::size_t n, float* X, float a)
{
    for (std::size_t i = 0; i < n; ++i) X[i] *= a;
}

template <>
double sum_squares<Impl::ref>(std::size_t n, const float* X)
{
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(X[i]) * X[i];
    return s;
}

} // namespace ompml
