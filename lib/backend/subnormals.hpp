// Subnormal floats on host cores: flushed to zero (the default) or kept (IEEE).
//
// Why: training makes subnormals as it goes. Adam's first moment of a weight whose gradient
// stops (an input pixel that is rarely non-zero, a ReLU unit that no longer fires) decays by
// beta1 each step through the subnormal range, and an Intel Xeon takes a microcode assist for
// every such result. Measured on the development Xeon (2 vCPUs, docs/results/host.md): the
// quick start's optimizer phase grew from 0.145 ms per step in epoch 1 to 0.875 ms in epoch 10,
// and the epoch's rate fell from 97.7k to 61.7k samples/s; flushed, every epoch ran at 89-99k,
// and the trained parameters were the same bits (only the moments' 35k subnormal entries
// became 0). The AMD EPYC Zen 5 measured there showed no such slowdown.
//
// How: the calling thread's MXCSR flush-to-zero and denormals-are-zero bits (x86-64). OpenMP's
// worker threads take the calling thread's MXCSR at each parallel region (LLVM libomp's
// KMP_INHERIT_FP_CONTROL, on by default), and threads started later inherit it. make_backend
// applies OMPML_SUBNORMALS to the host backends (ref, omp) before their first kernel. GPUs
// handle subnormals at full speed and are not touched.
#pragma once

#include <string>

namespace ompml {

enum class Subnormals { flush, keep };

// OMPML_SUBNORMALS=flush|keep, flush when unset; an Error names any other value.
Subnormals subnormals_from_env();

// Sets the calling thread's mode. Returns false where this CPU has no such control here (not
// x86-64): subnormals are then kept.
bool set_subnormals(Subnormals mode);

// The calling thread's mode, as its control register says.
Subnormals current_subnormals();

// "flushed to zero (FTZ, DAZ)" or "kept (IEEE)": for the programs' headers.
std::string subnormals_text(Subnormals mode);

} // namespace ompml
