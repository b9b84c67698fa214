// Optimizer updates as OpenMP target kernels; the per-element bodies (sgd_body, adam_body) are
// shared with ref and cuda. Streaming kernels: no `simd` on the combined construct and no
// num_teams/thread_limit, for the reasons in blas1_omp.cpp.
#include "kernels/optimizer.hpp"

namespace ompml {

template <>
void sgd_update<Impl::omp>(std::size_t n, const SgdStep& s, float* W, const float* G, float* M)
{
    // W, G, M: (n)
    const SgdStep st = s; // by value: firstprivate in the target region, not a host reference
#pragma omp target teams distribute parallel for is_device_ptr(W, G, M)
    for (std::size_t i = 0; i < n; ++i) sgd_body(st, W[i], G[i], M[i]);
}

template <>
void adam_update<Impl::omp>(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V)
{
    // W, G, M, V: (n)
    const AdamStep st = s;
    const AdamCorrection c = adam_correction(s); // on the host, once per step
    const float c1 = c.c1, c2 = c.c2;
#pragma omp target teams distribute parallel for is_device_ptr(W, G, M, V)
    for (std::size_t i = 0; i < n; ++i) adam_body(st, c1, c2, W[i], G[i], M[i], V[i]);
}

} // namespace ompml
