// activation backward, sequential reference.
#include "kernels/activation.hpp"

namespace ompml {

template <>
void activation_backward<Impl::ref>(Act act, std::size_t n, const float* Z, const float* dY, float* dX)
{
    for (std::size_t i = 0; i < n; ++i) dX[i] = act_backward_elem(act, Z[i], dY[i]);
}

} // namespace ompml
