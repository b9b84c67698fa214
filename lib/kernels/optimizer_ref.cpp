// Optimizer updates, sequential reference (same per-element bodies as every backend).
#include "kernels/optimizer.hpp"

namespace ompml {
namespace {

// T: the gradient's type, float or bf16; COPY: whether W16 is written; DECOUPLED: AdamW (both
// decided once per call, decide_once).
template <bool COPY, class T>
void sgd_loop(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16)
{
    for (std::size_t i = 0; i < n; ++i) {
        sgd_body(s, W[i], to_float(G[i]), M[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <bool DECOUPLED, bool COPY, class T>
void adam_loop(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16)
{
    const AdamCorrection c = adam_correction(s);
    for (std::size_t i = 0; i < n; ++i) {
        adam_body<DECOUPLED>(s, c.c1, c.c2, W[i], to_float(G[i]), M[i], V[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <class T>
void sgd_ref(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16)
{
    decide_once(W16 != nullptr, [&](auto copy) { sgd_loop<decltype(copy)::value>(n, s, W, G, M, W16); });
}

template <class T>
void adam_ref(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16)
{
    decide_adam(s, W16, [&](auto dec, auto copy) {
        adam_loop<decltype(dec)::value, decltype(copy)::value>(n, s, W, G, M, V, W16);
    });
}

} // namespace

template <>
void sgd_update<Impl::ref>(std::size_t n, const SgdStep& s, float* W, const float* G, float* M, bf16* W16)
{
    sgd_ref(n, s, W, G, M, W16);
}

template <>
void sgd_update<Impl::ref>(std::size_t n, const SgdStep& s, float* W, const bf16* G, float* M, bf16* W16)
{
    sgd_ref(n, s, W, G, M, W16);
}

template <>
void adam_update<Impl::ref>(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V, bf16* W16)
{
    adam_ref(n, s, W, G, M, V, W16);
}

template <>
void adam_update<Impl::ref>(std::size_t n, const AdamStep& s, float* W, const bf16* G, float* M, float* V, bf16* W16)
{
    adam_ref(n, s, W, G, M, V, W16);
}

} // namespace ompml
