// float <-> bf16 over n elements (core/bf16.hpp: round to nearest even, NaN and Inf kept):
// the mixed-precision copies of inputs, gradients of activations and weights, and the
// compressed gradients between ranks.
#pragma once

#include "core/bf16.hpp"
#include "kernels/impl.hpp"

#include <cstddef>

namespace ompml {

//   X: (n), Y: (n)
template <Impl I>
void convert(std::size_t n, const float* X, bf16* Y);

template <Impl I>
void convert(std::size_t n, const bf16* X, float* Y);

} // namespace ompml
