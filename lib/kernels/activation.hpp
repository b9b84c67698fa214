// Activations: forward and derivative bodies shared by every backend, and the fused
// activation backward kernel dX = dY * act'(Z) over pre-activations Z.
// gelu is the tanh approximation (PyTorch's GELU(approximate="tanh")).
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
    case Act::relu: return z > 0.0f ? z : 0.0f;
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
    case Act::relu: return z > 0.0f ? 1.0f : 0.0f;
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
#pragma omp end declare target

// dX[i] = dY[i] * act'(Z[i]) for i < n. dX may alias dY.
//   Z, dY, dX: (n)
template <Impl I>
void activation_backward(Act act, std::size_t n, const float* Z, const float* dY, float* dX);

} // namespace ompml
