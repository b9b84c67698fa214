// Fused softmax + cross-entropy over logits (B, C) and integer labels (B):
// returns the summed loss and the number of rows whose argmax equals the label, and, when
// dlogits is non-null, writes dlogits = scale * (softmax(logits) - onehot(label)), (B, C).
// scale is 1 / (global batch size), so gradients summed over ranks are the batch mean. row_loss,
// when non-null, receives each row's loss (B), the terms of the returned sum.
#pragma once

#include "kernels/impl.hpp"

#include <cstdint>

namespace ompml {

struct XentStats {
    double loss_sum = 0.0;
    long long correct = 0;
};

template <Impl I>
XentStats softmax_xent(int B, int C, const float* logits, const std::int32_t* labels, float scale, float* dlogits,
                       double* row_loss = nullptr);

} // namespace ompml
