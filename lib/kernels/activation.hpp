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
#include <initializer_list>

namespace ompml {

enum class Act : int { identity = 0, relu = 1, tanh = 2, gelu = 3 };

#pragma omp declare target
// tanh as the activations compute it. GPUs: their own tanhf. Host cores: in arithmetic alone, so
// that the loops over a tensor vectorize (libm's tanhf is a call per element, which clang does
// not vectorize: gelu trained the quick-start model 2.4x slower than relu), and within 1 ulp of
// the correctly rounded tanh for every float (checked over all 2^32 of them, with and without
// FMA contraction; glibc's tanhf: 2 ulp), odd, tanh(+-Inf) = +-1, NaN through. For |x| < 0.625,
// x + x^3 q(x^2), q of degree 4 fitted by least squares (relative error 4.5e-9); above,
// 1 - 2 / (e^{2|x|} + 1), with e^y = 2^n e^r (r = y - n ln 2 in two parts, |r| <= ln 2 / 2; e^r
// by its Taylor polynomial of degree 7) and |x| capped at 10, where tanh rounds to 1.
OMPML_HD inline float act_tanh(float x)
{
#if defined(__CUDA_ARCH__) || defined(__NVPTX__)
    return std::tanh(x);
#else
    const float z = std::fabs(x), s = z * z;
    const float q = (((-5.704042502e-03f * s + 2.063786238e-02f) * s - 5.373915657e-02f) * s + 1.333143115e-01f) * s -
        3.333328068e-01f;
    const float near0 = z + z * s * q;
    const float y = 2.0f * std::fmin(z, 10.0f);
    const float n = std::floor(y * 1.44269504088896341f + 0.5f); // y / ln 2, rounded
    const float r = (y - n * 0.693359375f) - n * -2.121944400546905828e-4f;
    float er = 1.0f / 5040; // e^r: the sum of r^k / k! for k <= 7, by Horner
    for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) er = er * r + c;
    const float e = er * __builtin_bit_cast(float, static_cast<unsigned>(static_cast<int>(n) + 127) << 23); // 2^n
    const float far = 1.0f - 2.0f / (e + 1.0f);
    return std::copysign(z >= 0.625f ? far : near0, x); // NaN: near0, NaN
#endif
}

OMPML_HD inline float act_forward(Act a, float z)
{
    switch (a) {
    case Act::relu: return z <= 0.0f ? 0.0f : z; // NaN is not <= 0: it passes
    case Act::tanh: return act_tanh(z);
    case Act::gelu: {
        const float u = 0.7978845608028654f * (z + 0.044715f * z * z * z); // sqrt(2/pi)
        return 0.5f * z * (1.0f + act_tanh(u));
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
        const float t = act_tanh(z);
        return 1.0f - t * t;
    }
    case Act::gelu: {
        const float u = 0.7978845608028654f * (z + 0.044715f * z * z * z);
        const float t = act_tanh(u);
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
