// The OpenBLAS anchor: cblas_sgemm on host cores (built when CMake or Makefile.hpc found
// OpenBLAS and its cblas.h). It names the core (kernel set) and threads it runs, and warns when
// OPENBLAS_CORETYPE forces a core below what the CPU supports (openblas_core.hpp): run the
// anchor with it unset.
#include "bench/anchors.hpp"
#include "bench/openblas_core.hpp"

#include "core/check.hpp"

#include <cblas.h>

#include <cstdlib>

namespace ompml::bench {
namespace {

// What the anchor runs: OpenBLAS's core and threads, the CPU's widest vector ISA, and the
// environment variables that steer OpenBLAS's choice.
struct OpenblasInfo {
    std::string core, config; // openblas_get_corename(), openblas_get_config() (version, build)
    int threads = 0;          // openblas_get_num_threads()
    Isa core_isa = Isa::unknown, cpu = Isa::unknown;
    std::string coretype, l2_size; // OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE; "" when unset
};

OpenblasInfo openblas_info()
{
    const auto text = [](const char* s) { return std::string(s != nullptr ? s : ""); };
    OpenblasInfo o;
    o.core = text(openblas_get_corename());
    o.config = text(openblas_get_config());
    o.threads = openblas_get_num_threads();
    o.core_isa = openblas_core_isa(o.core);
    o.cpu = cpu_isa();
    o.coretype = text(std::getenv("OPENBLAS_CORETYPE"));
    o.l2_size = text(std::getenv("OPENBLAS_L2_SIZE"));
    return o;
}

class OpenblasAnchor final : public Anchor {
public:
    const char* name() const override { return "openblas"; }
    std::string device() const override
    {
        return "host (OpenBLAS cblas_sgemm, core " + ob_.core + ", " + std::to_string(ob_.threads) + " threads)";
    }
    // "core=Haswell core_isa=AVX2 cpu_isa=AVX-512 threads=2 OPENBLAS_CORETYPE=Haswell
    // OPENBLAS_L2_SIZE=unset config=OpenBLAS 0.3.21 ...": key=value pairs, the free text last.
    std::string info() const override
    {
        const auto env = [](const std::string& v) { return v.empty() ? std::string("unset") : v; };
        return "core=" + ob_.core + " core_isa=" + isa_name(ob_.core_isa) + " cpu_isa=" + isa_name(ob_.cpu) +
            " threads=" + std::to_string(ob_.threads) + " OPENBLAS_CORETYPE=" + env(ob_.coretype) +
            " OPENBLAS_L2_SIZE=" + env(ob_.l2_size) + " config=" + ob_.config;
    }
    std::string warning() const override { return openblas_core_warning(ob_.core, ob_.coretype.c_str(), ob_.cpu); }

    // Row-major, as Gemm; the epilogue is the kernels' business, not the anchor's.
    void gemm(const Gemm& g, const float* A, const float* B, float* C) override
    {
        require(g.act == Act::identity, "openblas anchor: gemm without an activation only");
        cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, g.m,
                    g.n, g.k, g.alpha, A, g.trans_a ? g.m : g.k, B, g.trans_b ? g.k : g.n, g.beta, C, g.n);
    }

private:
    OpenblasInfo ob_ = openblas_info();
};

} // namespace

std::unique_ptr<Anchor> make_openblas_anchor() { return std::make_unique<OpenblasAnchor>(); }

} // namespace ompml::bench
