// activation backward, dX = dY * act'(Z) (relu: a select, activation.hpp), as an OpenMP target
// kernel over device pointers.
// The switch over the activation sits outside the loop, so each loop body is one inlined
// derivative the host can vectorize (a switch inside the loop blocks vectorization).
// No `simd` on the combined construct and no num_teams/thread_limit: see blas1_omp.cpp. The
// loop index is int where the length allows (omp_index.hpp).
#include "kernels/activation.hpp"
#include "kernels/omp_index.hpp"

#include <cstdint>

namespace ompml {
namespace {

// dX for one element: act_backward_elem, but relu's select (z <= 0 ? +0 : dy) written on dy's
// bits: where z <= 0 they are ANDed with `none`, a 0 the compiler cannot see (read through a
// volatile by the caller). The same bits, but dy's load then has two uses and stays a plain
// vector load. As a bare select the host compiler folds the load into a zero-masking load that
// waits for Z's compare; on an AMD EPYC Zen 5 that loop over 4M elements ran 1.15x slower than
// with plain loads, and up to 1.3x when the VM's memory was busy (the gate's activation_relu row
// against 243be8d's multiply).
template <Act A>
inline float backward_elem(float z, float dy, std::uint32_t none)
{
    if constexpr (A != Act::relu) {
        return act_backward_elem(A, z, dy);
    } else {
        std::uint32_t u;
        __builtin_memcpy(&u, &dy, sizeof(u));
        if (z <= 0.0f) u &= none;
        float r;
        __builtin_memcpy(&r, &u, sizeof(r));
        return r;
    }
}

template <Act A, class I>
void act_backward_loop(I n, const float* Z, const float* dY, float* dX)
{
    // Z, dY, dX: (n)
    volatile std::uint32_t zero = 0u;
    const std::uint32_t none = zero;
    if (dX == dY) {
        // In place (dX aliases dY): written with one pointer so the host's runtime alias
        // check (which rejects any overlap, even the harmless same-index one) still passes.
#pragma omp target teams distribute parallel for is_device_ptr(Z, dX)
        for (I i = 0; i < n; ++i) dX[i] = backward_elem<A>(Z[i], dX[i], none);
    } else {
#pragma omp target teams distribute parallel for is_device_ptr(Z, dY, dX)
        for (I i = 0; i < n; ++i) dX[i] = backward_elem<A>(Z[i], dY[i], none);
    }
}

} // namespace

template <>
void activation_backward<Impl::omp>(Act act, std::size_t n, const float* Z, const float* dY, float* dX)
{
    with_loop_index(n, [&](auto len) {
        switch (act) {
        case Act::relu: act_backward_loop<Act::relu>(len, Z, dY, dX); break;
        case Act::tanh: act_backward_loop<Act::tanh>(len, Z, dY, dX); break;
        case Act::gelu: act_backward_loop<Act::gelu>(len, Z, dY, dX); break;
        default: act_backward_loop<Act::identity>(len, Z, dY, dX); break;
        }
    });
}

} // namespace ompml
