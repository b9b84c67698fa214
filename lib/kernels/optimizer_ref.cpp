// Optimizer updates, sequential reference (same per-element bodies as every backend).
#include "kernels/optimizer.hpp"

namespace ompml {

template <>
void sgd_update<Impl::ref>(std::size_t n, const SgdStep& s, float* W, const float* G, float* M)
{
    for (std::size_t i = 0; i < n; ++i) sgd_body(s, W[i], G[i], M[i]);
}

template <>
void adam_update<Impl::ref>(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V)
{
    const AdamCorrection c = adam_correction(s);
    for (std::size_t i = 0; i < n; ++i) adam_body(s, c.c1, c.c2, W[i], G[i], M[i], V[i]);
}

} // namespace ompml
