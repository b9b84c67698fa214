// The one place that knows which anchors this build has, plus the plain `parallel for` anchor,
// which every build has.
#include "bench/anchors.hpp"

#include "core/check.hpp"

#include <omp.h>

namespace ompml::bench {
namespace {

[[noreturn]] void lacks(const Anchor& a, const char* op)
{
    throw Error(std::string("anchor '") + a.name() + "' cannot run " + op);
}

// The host loops the omp kernels are measured against: same thread count, host memory, the
// loop a programmer writes without thinking about offload.
class ParallelForAnchor final : public Anchor {
public:
    const char* name() const override { return "omp-parallel-for"; }
    std::string device() const override
    {
        return "host (" + std::to_string(omp_get_max_threads()) + " threads, #pragma omp parallel for)";
    }
    void normalize_u8(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift) override
    {
#pragma omp parallel for
        for (std::size_t i = 0; i < n; ++i) Y[i] = static_cast<float>(X[i]) * scale + shift;
    }
};

} // namespace

void Anchor::gemm(const Gemm&, const float*, const float*, float*) { lacks(*this, "gemm"); }
void Anchor::normalize_u8(std::size_t, const std::uint8_t*, float*, float, float) { lacks(*this, "normalize_u8"); }

std::unique_ptr<Anchor> make_parallel_for_anchor() { return std::make_unique<ParallelForAnchor>(); }

std::unique_ptr<Anchor> make_anchor(std::string_view name, std::string* why)
{
    if (name == "omp-parallel-for") return make_parallel_for_anchor();
    if (name == "openblas") {
#ifdef OMPML_WITH_OPENBLAS
        return make_openblas_anchor();
#else
        return nullptr;
#endif
    }
    if (name == "cublas") {
#ifdef OMPML_WITH_CUBLAS
        return make_cublas_anchor(why);
#else
        return nullptr;
#endif
    }
    (void)why;
    throw Error("unknown anchor '" + std::string(name) + "'");
}

} // namespace ompml::bench
