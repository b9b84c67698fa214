// activation backward as an OpenMP target kernel over device pointers.
#include "kernels/activation.hpp"

namespace ompml {

template <>
void activation_backward<Impl::omp>(Act act, std::size_t n, const float* Z, const float* dY, float* dX)
{
#pragma omp target teams distribute parallel for simd is_device_ptr(Z, dY, dX)
    for (std::size_t i = 0; i < n; ++i) dX[i] = dY[i] * act_derivative(act, Z[i]);
}

} // namespace ompml
