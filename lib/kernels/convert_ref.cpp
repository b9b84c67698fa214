// float <-> bf16, sequential reference.
#include "kernels/convert.hpp"

namespace ompml {

template <>
void convert<Impl::ref>(std::size_t n, const float* X, bf16* Y)
{
    for (std::size_t i = 0; i < n; ++i) Y[i] = to_bf16(X[i]);
}

template <>
void convert<Impl::ref>(std::size_t n, const bf16* X, float* Y)
{
    for (std::size_t i = 0; i < n; ++i) Y[i] = to_float(X[i]);
}

} // namespace ompml
