// Vector kernels, sequential reference.
#include "kernels/blas1.hpp"

namespace ompml {
namespace {

template <class T> // float or bf16
void fill_ref(std::size_t n, T* X, float value)
{
    const T v = from_float<T>(value);
    for (std::size_t i = 0; i < n; ++i) X[i] = v;
}

template <class T>
double sum_squares_ref(std::size_t n, const T* X)
{
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = to_float(X[i]);
        s += x * x;
    }
    return s;
}

} // namespace

template <>
void fill<Impl::ref>(std::size_t n, float* X, float value)
{
    fill_ref(n, X, value);
}
template <>
void fill<Impl::ref>(std::size_t n, bf16* X, float value)
{
    fill_ref(n, X, value);
}

template <>
double sum_squares<Impl::ref>(std::size_t n, const float* X)
{
    return sum_squares_ref(n, X);
}
template <>
double sum_squares<Impl::ref>(std::size_t n, const bf16* X)
{
    return sum_squares_ref(n, X);
}

} // namespace ompml
