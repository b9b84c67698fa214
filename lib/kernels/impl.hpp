// Which implementation of a kernel: every kernel stem declares `template <Impl I> op(...)` once
// in <op>.hpp, and <op>_ref.cpp, <op>_omp.cpp and <op>_cuda.cu each define one explicit
// specialisation, so the three backends share one signature checked by the compiler.
#pragma once

namespace ompml {

enum class Impl { ref, omp, cuda };

constexpr const char* impl_name(Impl i) { return i == Impl::ref ? "ref" : i == Impl::omp ? "omp" : "cuda"; }

} // namespace ompml
