// uint8 -> float normalisation, Y = X * scale + shift, as an OpenMP target kernel.
// A streaming kernel (1 byte in, 4 out): no `simd` on the combined construct and no
// num_teams/thread_limit, for the reasons in blas1_omp.cpp.
// The loop index is int where the length allows (omp_index.hpp).
#include "kernels/normalize.hpp"
#include "kernels/omp_index.hpp"

namespace ompml {
namespace {

template <class I>
void normalize_u8_loop(I n, const std::uint8_t* X, float* Y, float scale, float shift)
{
    // X: (n) bytes, Y: (n) floats
#pragma omp target teams distribute parallel for is_device_ptr(X, Y)
    for (I i = 0; i < n; ++i) Y[i] = static_cast<float>(X[i]) * scale + shift;
}

} // namespace

template <>
void normalize_u8<Impl::omp>(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift)
{
    with_loop_index(n, [&](auto len) { normalize_u8_loop(len, X, Y, scale, shift); });
}

} // namespace ompml
