// Vector kernels over n floats: fill, scale, and the sum of squares (global L2 norm for
// gradient clipping, accumulated in double; also over bf16, the gradient summed with
// --grad-dtype bf16).
#pragma once

#include "core/bf16.hpp"
#include "kernels/impl.hpp"

#include <cstddef>

namespace ompml {

template <Impl I>
void fill(std::size_t n, float* X, float value);

template <Impl I>
void scale(std::size_t n, float* X, float a);

template <Impl I>
double sum_squares(std::size_t n, const float* X);
template <Impl I>
double sum_squares(std::size_t n, const bf16* X);

} // namespace ompml
