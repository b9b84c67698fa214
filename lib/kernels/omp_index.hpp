// The loop index of the streaming omp kernels (lengths are std::size_t).
//
// On a GPU a 64-bit loop index costs registers in every thread: the bounds, the chunk
// arithmetic and every address are pairs of 32-bit registers (sm_90, device LTO: adam_update 51
// registers with a std::size_t index, 29 with int; sgd 38 against 31; docs/directives-vs-cuda.md),
// and registers bound how many threads an SM keeps resident to hide memory latency. So each
// kernel templates its loop on the index type, and with_loop_index runs it with an int length
// up to kIntLoopMax elements, with std::size_t beyond. Half of INT_MAX: `distribute parallel
// for` steps its bounds by the whole grid (up to about the trip count), in the index type, so
// bound + stride must fit too. A signed index also keeps host loops vectorizable (no
// wrap-around to prove absent).
#pragma once

#include <cstddef>
#include <limits>

namespace ompml {

// Calls loop(len) with len = n as an int when n <= kIntLoopMax, else as a std::size_t: loop is a
// generic lambda that forwards len to the kernel's loop template.
constexpr std::size_t kIntLoopMax = std::numeric_limits<int>::max() / 2;

template <class Loop>
void with_loop_index(std::size_t n, Loop&& loop)
{
    if (n <= kIntLoopMax)
        loop(static_cast<int>(n));
    else
        loop(n);
}

} // namespace ompml
