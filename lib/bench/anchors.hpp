// Constructors of the built anchors; only anchors.cpp (the factory) includes this.
#pragma once

#include "bench/anchor.hpp"

namespace ompml::bench {

std::unique_ptr<Anchor> make_parallel_for_anchor();
#ifdef OMPML_WITH_OPENBLAS
std::unique_ptr<Anchor> make_openblas_anchor();
#endif
#ifdef OMPML_WITH_CUBLAS
std::unique_ptr<Anchor> make_cublas_anchor(std::string* why); // null without a CUDA device
#endif

} // namespace ompml::bench
