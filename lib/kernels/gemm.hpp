// gemm: C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, any M, N, K >= 1.
// op(A) is (M, K): A is stored (M, K), or (K, M) when trans_a.
// op(B) is (K, N): B is stored (K, N), or (N, K) when trans_b.
// bias (N) is added to every row when non-null; when pre is non-null it receives the value
// before the activation (what activation_backward needs), (M, N).
#pragma once

#include "kernels/activation.hpp"
#include "kernels/impl.hpp"

namespace ompml {

struct Gemm {
    bool trans_a = false;
    bool trans_b = false;
    int m = 0, n = 0, k = 0;
    float alpha = 1.0f;
    float beta = 0.0f;
    Act act = Act::identity;
};

template <Impl I>
void gemm(const Gemm& g, const float* A, const float* B, float* C, const float* bias = nullptr,
          float* pre = nullptr);

} // namespace ompml
