// Vector kernels over n elements: fill (float, or bf16 for a bf16 gradient), and the sum of
// squares (the global L2 norm for gradient clipping, accumulated in double; over float or over
// bf16, the gradient summed with --grad-dtype bf16).
#pragma once

#include "core/bf16.hpp"
#include "kernels/impl.hpp"

#include <cstddef>

namespace ompml {

// X[i] = value (rounded once to T)
//   X: (n)
template <Impl I, class T>
void fill(std::size_t n, T* X, float value);

//   X: (n)
template <Impl I, class T>
double sum_squares(std::size_t n, const T* X);

} // namespace ompml
