// Anchors: yardsticks measured in the same run as the backends, on the same inputs, so that
// one CSV gives the ratios. Not backends: each runs only the few operations a kernel record
// names it for, with the Backend's signatures (so a record prepares inputs once, as a template
// over Backend and Anchor).
//   openblas          OpenBLAS cblas_sgemm on host cores (gemm), when the build found OpenBLAS
//   cublas            cuBLAS SGEMM, FP32 without TF32 (gemm): the GPU upper anchor, in builds
//                     with cuBLAS and when a CUDA device is present
//   omp-parallel-for  a plain `#pragma omp parallel for` host loop (normalize_u8)
// make_anchor is the one factory; only it (anchors.cpp) knows which anchors were built.
#pragma once

#include "core/memory.hpp"
#include "kernels/gemm.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ompml::bench {

class Anchor {
public:
    virtual ~Anchor() = default;

    virtual const char* name() const = 0;   // its backend column: "openblas", "cublas", ...
    virtual std::string device() const = 0; // where it runs, for the `# device:` line
    virtual bool on_gpu() const { return false; }
    virtual const MemorySpace& memory() const { return host_memory(); } // where its operands live
    virtual void synchronize() const {}
    // One line that says what exactly it ran (the CSV's `# <name>: ...` comment, the table's
    // `<name> ...` line); "" for none. A warning when it runs below its best here; "" for none.
    virtual std::string info() const { return {}; }
    virtual std::string warning() const { return {}; }

    // The operations; an anchor overrides those it runs, the others throw (a record that names
    // an anchor for an operation it lacks is a bug of the record).
    virtual void gemm(const Gemm& g, const float* A, const float* B, float* C);
    virtual void normalize_u8(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift);
};

// The anchor `name`, or null: silently where this build lacks it, and with `why` set where it
// was built but cannot run here (cuBLAS without a GPU). Throws Error on a name no build has.
std::unique_ptr<Anchor> make_anchor(std::string_view name, std::string* why);

} // namespace ompml::bench
