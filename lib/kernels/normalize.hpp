// uint8 -> float: Y[i] = X[i] * scale + shift. The input batch travels to the device as bytes
// (4x less traffic) and is normalised there.
#pragma once

#include "kernels/impl.hpp"

#include <cstddef>
#include <cstdint>

namespace ompml {

template <Impl I>
void normalize_u8(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift);

} // namespace ompml
