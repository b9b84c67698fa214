// Activations: forward and backward bodies shared by every backend, and the fused
// activation backward kernel dX = dY * act'(Z) over pre-activations Z.
// gelu is the tanh approximation (PyTorch's GELU(approximate="tanh")).
//
// NaN goes through as in PyTorch 1.13 (checked with torch.relu on the host): relu(NaN) = NaN,
// so a NaN input shows in the loss instead of vanishing into a 0, and relu's backward is
// PyTorch's threshold_backward, a select on the output: dX = (relu(z) <= 0) ? 0 : dY, i.e. dY
// where z > 0 or z is NaN, and exactly 0 where z <= 0, even for a NaN or Inf dY (a multiply by
// 0 would give NaN there). For finite inputs both are bit-identical to `z > 0 ? z : 0` and
// dY * (z > 0), except that a zero dX is +0 where the multiply gave -0 for a negative dY.
#pragma once

#include "core/hd.hpp"
#include "kernels/impl.hpp"

#include <cmath>
#include <cstddef>

namespace ompml {

enum class Act : int { identity = 0, relu = 1, tanh = 2, gelu = 3 };

#pragma omp declare target
OMPML_HD inline float act_forward(Act a, float z)
{
    switch (a) {
    case Act::relu: return z <= 0.0f ? 0.0f : z; // NaN is not <= 0: it passes
    case Act::tanh: return std::tanh(z);
    case Act::gelu: {
        const float u = 0.7978845608028654f * (z + 0.044715f * z * z * z); // sqrt(2/pi)
        return 0.5f * z * (1.0f + std::tanh(u));
    }
    default: return z;
    }
}

// d act(z) / dz
OMPML_HD inline float act_derivative(Act a, float z)
{
    switch (a) {
    case Act::relu: return z <= 0.0f ? 0.0f : 1.0f; // 1 at NaN, like PyTorch's mask
    case Act::tanh: {
        const float t = std::tanh(z);
        return 1.0f - t * t;
    }
    case Act::gelu: {
        const float u = 0.7978845608028654f * (z + 0.044715f * z * z * z);
        const float t = std::tanh(u);
        const float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * z * z);
        return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * du;
    }
    default: return 1.0f;
    }
}
// dX for one element, dY * act'(z), except relu's select (see the top of this file).
OMPML_HD inline float act_backward_elem(Act a, float z, float dy)
{
    if (a == Act::relu) return z <= 0.0f ? 0.0f : dy;
    return dy * act_derivative(a, z);
}
#pragma omp end declare target

// dX[i] = dY[i] * act'(Z[i]) for i < n. dX may alias dY.
//   Z, dY, dX: (n)
template <Impl I>
void activation_backward(Act act, std::size_t n, const float* Z, const float* dY, float* dX);

} // namespace ompml
