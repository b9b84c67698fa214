// activation backward, dX = dY * act'(Z) (relu: a select, activation.hpp), as an OpenMP target
// kernel over device pointers.
// The switch over the activation sits outside the loop, so each loop body is one inlined
// derivative the host can vectorize (a switch inside the loop blocks vectorization).
// No `simd` on the combined construct and no num_teams/thread_limit: see blas1_omp.cpp. The
// loop index is int where the length allows (omp_index.hpp).
#include "kernels/activation.hpp"
#include "kernels/omp_index.hpp"

namespace ompml {
namespace {

template <Act A, class I>
void act_backward_loop(I n, const float* Z, const float* dY, float* dX)
{
    // Z, dY, dX: (n)
    if (dX == dY) {
        // In place (dX aliases dY): written with one pointer so the host's runtime alias
        // check (which rejects any overlap, even the harmless same-index one) still passes.
#pragma omp target teams distribute parallel for is_device_ptr(Z, dX)
        for (I i = 0; i < n; ++i) dX[i] = act_backward_elem(A, Z[i], dX[i]);
    } else {
#pragma omp target teams distribute parallel for is_device_ptr(Z, dY, dX)
        for (I i = 0; i < n; ++i) dX[i] = act_backward_elem(A, Z[i], dY[i]);
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
