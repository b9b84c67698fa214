// Reductions over a row-major (rows, cols) matrix X.
#pragma once

#include "kernels/impl.hpp"

namespace ompml {

// out[c] = beta * out[c] + sum_r X[r, c]      (the bias gradient; beta = 0 overwrites)
template <Impl I>
void col_sum(int rows, int cols, const float* X, float* out, float beta);

// out[r] = max_c X[r, c]
template <Impl I>
void row_max(int rows, int cols, const float* X, float* out);

// out[r] = sum_c X[r, c]
template <Impl I>
void row_sum(int rows, int cols, const float* X, float* out);

} // namespace ompml
