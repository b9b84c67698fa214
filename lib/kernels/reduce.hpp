// Reductions over a row-major (rows, cols) matrix X: the column sum (bias gradients).
#pragma once

#include "core/bf16.hpp"
#include "kernels/impl.hpp"
#include "kernels/tree_sum.hpp"

namespace ompml {

// out[c] = sum_r X[r, c], the bias gradient, stored as O: float, or bf16 (the float sum rounded
// once, for a gradient the ranks exchange in bf16). With rows in chunks (kc, kernels/tree_sum.hpp;
// --reproducible-ranks), each chunk's rows are summed in order and the chunks' sums added in the
// split tree, so a rank's share of the batch gives a subtree of the whole batch's sum.
//   X: (rows, cols), out: (cols)
template <Impl I, class O>
void col_sum(int rows, int cols, const float* X, O* out, const KChunks& kc = {});

} // namespace ompml
