// Optimizer updates over the flat parameter buffer W, its gradient G and state buffers.
// Semantics follow PyTorch's torch.optim.SGD / Adam / AdamW, so runs can be compared.
#pragma once

#include "core/bf16.hpp"
#include "core/hd.hpp"
#include "kernels/impl.hpp"

#include <cmath>
#include <cstddef>

namespace ompml {

// g' = grad_scale * g + weight_decay * w;  m = momentum * m + g';  w -= lr * m   (momentum 0: plain SGD)
// grad_scale is gradient clipping's factor (nn/optimizer.hpp), applied as G is read: G itself is
// never rewritten (it may be the bf16 gradient sum of --grad-dtype bf16).
struct SgdStep {
    float lr = 0.01f;
    float momentum = 0.0f;
    float weight_decay = 0.0f;
    float grad_scale = 1.0f;
};

// Adam: g' = grad_scale * g + weight_decay * w (L2). AdamW (decoupled): w -= lr * weight_decay * w first.
// m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
struct AdamStep {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
    bool decoupled = false; // true: AdamW
    long long t = 1;        // step number, from 1 (bias correction)
    float grad_scale = 1.0f;
};

#pragma omp declare target
OMPML_HD inline void sgd_body(const SgdStep& s, float& w, float g, float& m)
{
    g *= s.grad_scale; // its own statement: never contracted with the next into one fma
    g += s.weight_decay * w;
    m = s.momentum * m + g;
    w -= s.lr * m;
}

// DECOUPLED: s.decoupled, fixed for the call; every backend instantiates both (decide_once), so
// no loop carries the choice per element (if-converted, it was a masked store of w followed by a
// reload of w: a failed store-to-load forwarding per vector, 0.1 ms of a 0.29 ms Adam pass).
template <bool DECOUPLED>
OMPML_HD inline void adam_body(const AdamStep& s, float c1, float c2, float& w, float g, float& m, float& v)
{
    g *= s.grad_scale; // its own statement, as in sgd_body
    if constexpr (DECOUPLED)
        w -= s.lr * s.weight_decay * w;
    else
        g += s.weight_decay * w;
    m = s.beta1 * m + (1.0f - s.beta1) * g;
    v = s.beta2 * v + (1.0f - s.beta2) * g * g;
    w -= s.lr * (m * c1) / (std::sqrt(v * c2) + s.eps);
}
#pragma omp end declare target

// Adam's bias corrections for step t, computed once per step on the host:
// c1 = 1 / (1 - b1^t), c2 = 1 / (1 - b2^t).
struct AdamCorrection {
    float c1, c2;
};
inline AdamCorrection adam_correction(const AdamStep& s)
{
    return {static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(s.beta1), static_cast<double>(s.t)))),
            static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(s.beta2), static_cast<double>(s.t))))};
}

// Adam's two choices fixed for a call, made once for every backend's loop: f(decoupled, copy)
// with both as std::bool_constant (s.decoupled: AdamW; copy: W16 is written).
template <class F>
void decide_adam(const AdamStep& s, const bf16* W16, F&& f)
{
    decide_once(s.decoupled,
                [&](auto decoupled) { decide_once(W16 != nullptr, [&](auto copy) { f(decoupled, copy); }); });
}

// W16, when non-null, receives bf16(W) of the updated weights in the same pass: the weight
// copy that mixed-precision gemms read, refreshed without a separate conversion. G is float, or
// bf16 (the gradient summed over ranks with --grad-dtype bf16), widened as it is read.
// Every backend decides on W16 once per call (decide_once, impl.hpp), never per element.
// T: the gradient's type, float or bf16.
//   W, G, M, W16: (n)
template <Impl I, class T>
void sgd_update(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16 = nullptr);

//   W, G, M, V, W16: (n)
template <Impl I, class T>
void adam_update(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16 = nullptr);

} // namespace ompml
