// Test helpers: random host data, upload/download through a backend, closeness checks of the
// form |x - ref| <= atol + rtol * |ref| that report the worst element, and gemm's tolerance and
// case names (test_kernels.cpp, test_gemm.cpp).
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/rng.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace ompml::test {

inline std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo = -1.0f, float hi = 1.0f)
{
    const Rng rng(1234, stream);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.uniform(i);
    return v;
}

template <class T>
DeviceBuffer<T> upload(const Backend& be, const std::vector<T>& host)
{
    return DeviceBuffer<T>(be.memory(), host);
}

// Checks every element; on failure reports how many differ and the worst one.
inline void check_close(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol,
                        const std::string& what)
{
    BOOST_REQUIRE_EQUAL(got.size(), ref.size());
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
        const double tol = atol + rtol * std::fabs(ref[i]);
        const double excess = std::isnan(err) ? 1e30 : err - tol;
        if (excess > 0) ++bad;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    BOOST_CHECK_MESSAGE(bad == 0,
                        what << ": " << bad << " of " << got.size() << " elements differ; worst at " << worst
                             << ": got " << got[worst] << ", ref " << ref[worst]);
}

const char* const kTransNames[4] = {"NN", "NT", "TN", "TT"};

inline const char* act_name(Act a)
{
    switch (a) {
    case Act::relu: return "relu";
    case Act::tanh: return "tanh";
    case Act::gelu: return "gelu";
    default: return "identity";
    }
}

// "NT M=7 N=33 K=5 alpha=1 beta=0 act=relu bias pre": one gemm case, for failure messages.
inline std::string describe(const Gemm& g, bool with_bias, bool with_pre)
{
    std::ostringstream s;
    s << kTransNames[(g.trans_a ? 2 : 0) + (g.trans_b ? 1 : 0)] << " M=" << g.m << " N=" << g.n << " K=" << g.k
      << " alpha=" << g.alpha << " beta=" << g.beta << " act=" << act_name(g.act) << (with_bias ? " bias" : "")
      << (with_pre ? " pre" : "");
    return s.str();
}

// gemm's tolerance |C - ref| <= gemm_atol + kGemmRtol * |ref|. Why: the kernels sum the K
// products in float (blocked order), the reference in double and rounds once. Float summation
// error grows like sqrt(K) * eps * sum_p |a_ip * b_pj| for rounding errors of random sign (K * eps
// in the worst case); entries are uniform in [-1, 1], so sum_p |a b| is about K / 4, scaled by
// |alpha|. The floor of 16 ulps of 1 covers the epilogue terms of size ~1 (beta * C, bias) when
// ref is near 0. rtol covers the epilogue (beta * C, bias, activation), which both sides compute
// in float from slightly different z (tanh/gelu within a few ulp of the host's on a GPU); the
// activations have slope <= 1.13, so they do not amplify it. Measured errors sit 10x (K = 300)
// to 250x (K = 4096) below atol (random-sign partial sums stay far below sum |a b|), while an
// indexing or epilogue mistake is O(1) on entries ~sqrt(K) / 3. The GPU suite's bound for the
// same comparison, 1e-6 + 2e-7 K (a float running sum whose partial sums grow like sqrt(K)
// picks up about u K / 3), is kept where it is the looser (small K).
inline double gemm_atol(const Gemm& g)
{
    const double eps = std::numeric_limits<float>::epsilon();
    const double blocked = std::sqrt(static_cast<double>(g.k)) * eps * std::fabs(g.alpha) * (g.k / 4.0) + 16.0 * eps;
    return std::max(blocked, 1e-6 + 2e-7 * g.k);
}
constexpr double kGemmRtol = 1e-5;

} // namespace ompml::test
