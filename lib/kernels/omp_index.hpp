// The loop index of the streaming omp kernels (lengths are std::size_t).
//
// On a GPU a 64-bit loop index costs registers in every thread: the bounds, the chunk
// arithmetic and every address are pairs of 32-bit registers (sm_90: adam_update 51 registers
// with a std::size_t index, 36 with int; axpy 28 against 18; docs/directives-vs-cuda.md), and
// registers bound how many threads an SM keeps resident to hide memory latency. So each kernel
// templates its loop on the index type, and with_loop_index runs it with an int length where
// the length fits in one (arrays of up to 2^31 - 1 elements), with std::size_t beyond that. A
// signed index also keeps host loops vectorizable (no wrap-around to prove absent).
#pragma once

#include <cstddef>
#include <limits>

namespace ompml {

// Calls loop(len) with len = n as an int when it fits, else as a std::size_t: loop is a generic
// lambda that forwards len to the kernel's loop template.
template <class Loop>
void with_loop_index(std::size_t n, Loop&& loop)
{
    if (n <= static_cast<std::size_t>(std::numeric_limits<int>::max()))
        loop(static_cast<int>(n));
    else
        loop(n);
}

} // namespace ompml
