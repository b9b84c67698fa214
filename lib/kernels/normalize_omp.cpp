// uint8 -> float normalisation as an OpenMP target kernel.
#include "kernels/normalize.hpp"

namespace ompml {

template <>
void normalize_u8<Impl::omp>(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift)
{
#pragma omp target teams distribute parallel for simd is_device_ptr(X, Y)
    for (std::size_t i = 0; i < n; ++i) Y[i] = static_cast<float>(X[i]) * scale + shift;
}

} // namespace ompml
