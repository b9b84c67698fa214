// float <-> bf16 as OpenMP target kernels. Streaming kernels: no `simd` on the combined
// construct and no num_teams/thread_limit (blas1_omp.cpp says why); int loop index where the
// length allows (omp_index.hpp).
#include "kernels/convert.hpp"
#include "kernels/omp_index.hpp"

namespace ompml {
namespace {

template <class I, class From, class To>
void convert_loop(I n, const From* X, To* Y)
{
    // X: (n), Y: (n)
#pragma omp target teams distribute parallel for is_device_ptr(X, Y)
    for (I i = 0; i < n; ++i) Y[i] = from_float<To>(to_float(X[i]));
}

} // namespace

template <>
void convert<Impl::omp>(std::size_t n, const float* X, bf16* Y)
{
    with_loop_index(n, [&](auto len) { convert_loop(len, X, Y); });
}

template <>
void convert<Impl::omp>(std::size_t n, const bf16* X, float* Y)
{
    with_loop_index(n, [&](auto len) { convert_loop(len, X, Y); });
}

} // namespace ompml
