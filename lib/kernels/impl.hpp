// Which implementation of a kernel: every kernel stem declares `template <Impl I, ...> op(...)`
// once in <op>.hpp (with its element types as template parameters where float and bf16 share
// one body), and <op>_ref.cpp, <op>_omp.cpp and <op>_cuda.cu each define the explicit
// specialisations, so the three backends share one signature checked by the compiler.
#pragma once

#include <type_traits>

namespace ompml {

enum class Impl { ref, omp, cuda };

constexpr const char* impl_name(Impl i) { return i == Impl::ref ? "ref" : i == Impl::omp ? "omp" : "cuda"; }

// Calls f(std::true_type{}) when `on`, else f(std::false_type{}): a kernel whose loop would
// otherwise test a pointer that is fixed for the whole call (an optional output such as the
// bf16 weight copy) takes the answer as a template argument and runs one of two loops. A test
// inside a vectorized loop is if-converted into masked vector stores based at the null pointer,
// which an AMD EPYC Zen 5 runs at a crawl even with an all-false mask: Adam over 4M elements took
// 15.4 ms so, against 1.1 ms with the test out of the loop (ompml-bench, 2 cores).
template <class F>
void decide_once(bool on, F&& f)
{
    if (on)
        f(std::true_type{});
    else
        f(std::false_type{});
}

} // namespace ompml
