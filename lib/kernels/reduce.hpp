// Reductions over a row-major (rows, cols) matrix X: the column sum (bias gradients).
#pragma once

#include "kernels/impl.hpp"

namespace ompml {

// out[c] = beta * out[c] + sum_r X[r, c]      (the bias gradient; beta = 0 overwrites)
template <Impl I>
void col_sum(int rows, int cols, const float* X, float* out, float beta);

} // namespace ompml
