// bfloat16: the top 16 bits of an IEEE float (1 sign, 8 exponent, 7 mantissa bits), the
// storage type of mixed-precision operands (gemm inputs, the weight copy, compressed gradients).
// Arithmetic never happens in bf16: values are widened to float, used, and rounded back.
//
// to_bf16 rounds to nearest, ties to even, like PyTorch's and CUDA's conversions:
// - NaN stays NaN (quieted: a signalling NaN's payload could round to the Inf pattern);
// - Inf stays Inf, and finite values past the largest bf16 (3.3895e38) round to Inf;
// - subnormals are kept (bf16 has float's exponent range, so they round like normals).
// Plain bit arithmetic: one definition for host cores, OpenMP devices and CUDA, no intrinsics.
#pragma once

#include "core/hd.hpp"

#include <cstdint>
#include <type_traits>

namespace ompml {

struct bf16 {
    std::uint16_t bits;
};
static_assert(sizeof(bf16) == 2, "bf16 is two bytes");

#pragma omp declare target
OMPML_HD inline bf16 to_bf16(float f)
{
    std::uint32_t u;
    __builtin_memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)}; // NaN
    u += 0x7fffu + ((u >> 16) & 1u); // ties go to the even upper half
    return bf16{static_cast<std::uint16_t>(u >> 16)};
}

OMPML_HD inline float to_float(bf16 h)
{
    const std::uint32_t u = static_cast<std::uint32_t>(h.bits) << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof(f));
    return f;
}

// For code templated on the element type (float or bf16): to_float of a float is the float
// itself, and from_float<T> rounds to bf16 or keeps the float.
OMPML_HD inline float to_float(float x) { return x; }
template <class T>
OMPML_HD inline T from_float(float x)
{
    if constexpr (std::is_same_v<T, bf16>)
        return to_bf16(x);
    else
        return x;
}
#pragma omp end declare target

} // namespace ompml
