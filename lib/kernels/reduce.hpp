// Reductions over a row-major (rows, cols) matrix X: the column sum (bias gradients).
#pragma once

#include "core/bf16.hpp"
#include "kernels/impl.hpp"

namespace ompml {

// out[c] = sum_r X[r, c], the bias gradient, stored as O: float, or bf16 (the float sum rounded
// once, for a gradient the ranks exchange in bf16).
//   X: (rows, cols), out: (cols)
template <Impl I, class O>
void col_sum(int rows, int cols, const float* X, O* out);

} // namespace ompml
