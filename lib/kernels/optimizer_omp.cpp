// Optimizer updates as OpenMP target kernels; the per-element bodies (sgd_body, adam_body) are
// shared with ref and cuda. Streaming kernels: no `simd` on the combined construct and no
// num_teams/thread_limit, for the reasons in blas1_omp.cpp; the loop index is int where the
// length allows (omp_index.hpp).
#include "kernels/omp_index.hpp"
#include "kernels/optimizer.hpp"

namespace ompml {
namespace {

// The step's fields enter the target region as scalars (firstprivate by value), never as a
// struct: the fields of a firstprivate struct are read through a pointer, which the compiler
// must assume W may alias, so each vector iteration re-read them after its stores. The body's
// step is rebuilt from them per element, which costs nothing once they sit in registers.
// T: the gradient's type, float or bf16; COPY: whether W16 is written; DECOUPLED: AdamW (both
// decided once per call, decide_once).
template <bool COPY, class I, class T>
void sgd_loop(I n, const SgdStep& st, float* W, const T* G, float* M, bf16* W16)
{
    const float lr = st.lr, mom = st.momentum, wd = st.weight_decay, gs = st.grad_scale;
    // W, G, M, W16: (n)
#pragma omp target teams distribute parallel for is_device_ptr(W, G, M, W16)
    for (I i = 0; i < n; ++i) {
        sgd_body(SgdStep{lr, mom, wd, gs}, W[i], to_float(G[i]), M[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <bool DECOUPLED, bool COPY, class I, class T>
void adam_loop(I n, const AdamStep& st, float c1, float c2, float* W, const T* G, float* M, float* V, bf16* W16)
{
    const float lr = st.lr, b1 = st.beta1, b2 = st.beta2, eps = st.eps, wd = st.weight_decay, gs = st.grad_scale;
    // W, G, M, V, W16: (n)
#pragma omp target teams distribute parallel for is_device_ptr(W, G, M, V, W16)
    for (I i = 0; i < n; ++i) {
        adam_body<DECOUPLED>(AdamStep{lr, b1, b2, eps, wd, DECOUPLED, 0, gs}, c1, c2, W[i], to_float(G[i]), M[i], V[i]);
        if constexpr (COPY) W16[i] = to_bf16(W[i]);
    }
}

template <class T>
void sgd_omp(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16)
{
    decide_once(W16 != nullptr, [&](auto copy) {
        with_loop_index(n, [&](auto len) { sgd_loop<decltype(copy)::value>(len, s, W, G, M, W16); });
    });
}

template <class T>
void adam_omp(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16)
{
    const AdamCorrection c = adam_correction(s); // on the host, once per step
    decide_adam(s, W16, [&](auto dec, auto copy) {
        with_loop_index(n, [&](auto len) {
            adam_loop<decltype(dec)::value, decltype(copy)::value>(len, s, c.c1, c.c2, W, G, M, V, W16);
        });
    });
}

} // namespace

template <>
void sgd_update<Impl::omp>(std::size_t n, const SgdStep& s, float* W, const float* G, float* M, bf16* W16)
{
    sgd_omp(n, s, W, G, M, W16);
}

template <>
void sgd_update<Impl::omp>(std::size_t n, const SgdStep& s, float* W, const bf16* G, float* M, bf16* W16)
{
    sgd_omp(n, s, W, G, M, W16);
}

template <>
void adam_update<Impl::omp>(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V, bf16* W16)
{
    adam_omp(n, s, W, G, M, V, W16);
}

template <>
void adam_update<Impl::omp>(std::size_t n, const AdamStep& s, float* W, const bf16* G, float* M, float* V, bf16* W16)
{
    adam_omp(n, s, W, G, M, V, W16);
}

} // namespace ompml
