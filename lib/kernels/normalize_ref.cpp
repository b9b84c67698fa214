// uint8 -> float normalisation, sequential reference.
#include "kernels/normalize.hpp"

namespace ompml {

template <>
void normalize_u8<Impl::ref>(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift)
{
    for (std::size_t i = 0; i < n; ++i) Y[i] = static_cast<float>(X[i]) * scale + shift;
}

} // namespace ompml
