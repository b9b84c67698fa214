// gemm of the omp backend against the sequential reference (double accumulator) on random data:
// every transpose case x every activation x bias or not x pre or not x beta zero or not, on
// shapes with 1, 7, 33, 127 and > 1000 in each of M, N, K (edges of the micro-kernel and of the
// cache blocks), plus argument validation through the Backend.
#define BOOST_TEST_MODULE gemm
#include "support.hpp"

#include "core/check.hpp"
#include "kernels/gemm_omp.hpp"

#include <omp.h>

#include <cstring>
#include <limits>
#include <sstream>

using namespace ompml;
using namespace ompml::test;

namespace {

const char* trans_name(const Gemm& g)
{
    static const char* names[4] = {"NN", "NT", "TN", "TT"};
    return names[(g.trans_a ? 2 : 0) + (g.trans_b ? 1 : 0)];
}

const char* act_name(Act a)
{
    switch (a) {
    case Act::relu: return "relu";
    case Act::tanh: return "tanh";
    case Act::gelu: return "gelu";
    default: return "identity";
    }
}

std::string describe(const Gemm& g, bool with_bias, bool with_pre)
{
    std::ostringstream s;
    s << trans_name(g) << " M=" << g.m << " N=" << g.n << " K=" << g.k << " alpha=" << g.alpha << " beta=" << g.beta
      << " act=" << act_name(g.act) << (with_bias ? " bias" : "") << (with_pre ? " pre" : "");
    return s.str();
}

// Tolerance |omp - ref| <= atol + rtol * |ref|. Why: the omp kernel sums the K products in float
// (blocked order), the reference in double and rounds once. Float summation error grows like
// sqrt(K) * eps * sum_p |a_ip * b_pj| for rounding errors of random sign (K * eps in the worst
// case); entries are uniform in [-1, 1], so sum_p |a b| is about K / 4, scaled by |alpha|. The
// floor of 16 ulps of 1 covers the epilogue terms of size ~1 (beta * C, bias) when ref is near 0.
// rtol covers the epilogue (beta * C, bias, activation), which both sides compute in float from
// slightly different z: a few ulps; the activations have slope <= 1.13, so they do not amplify
// it. Measured errors sit 10x (K = 300) to 250x (K = 4096) below atol (random-sign partial sums
// stay far below sum |a b|), while an indexing or epilogue mistake is O(1) on entries ~sqrt(K) / 3.
double gemm_atol(const Gemm& g)
{
    const double eps = std::numeric_limits<float>::epsilon();
    return std::sqrt(static_cast<double>(g.k)) * eps * std::fabs(g.alpha) * (g.k / 4.0) + 16.0 * eps;
}
constexpr double kRtol = 1e-5;

struct Backends {
    std::unique_ptr<Backend> ref = make_backend("ref");
    std::unique_ptr<Backend> omp = make_backend("omp");
};

// Runs one gemm on both backends and compares C (and pre). With beta == 0, C starts as NaN:
// the kernel must not read it. Returns omp's C for callers that compare runs with each other.
std::vector<float> check_gemm(Backends& be, const Gemm& g, bool with_bias, bool with_pre, std::uint64_t seed)
{
    const std::size_t M = g.m, N = g.n, K = g.k;
    const auto A = random_floats(M * K, 4 * seed);     // (M, K) or (K, M)
    const auto B = random_floats(K * N, 4 * seed + 1); // (K, N) or (N, K)
    const auto bias = random_floats(N, 4 * seed + 2);  // (N)
    auto C0 = random_floats(M * N, 4 * seed + 3);      // (M, N)
    if (g.beta == 0.0f) C0.assign(M * N, std::numeric_limits<float>::quiet_NaN());

    std::vector<float> Cref = C0, pre_ref(M * N);
    be.ref->gemm(g, A.data(), B.data(), Cref.data(), with_bias ? bias.data() : nullptr,
                 with_pre ? pre_ref.data() : nullptr);

    auto dA = upload(*be.omp, A), dB = upload(*be.omp, B), dbias = upload(*be.omp, bias), dC = upload(*be.omp, C0);
    DeviceBuffer<float> dpre(be.omp->memory(), M * N);
    be.omp->gemm(g, dA.data(), dB.data(), dC.data(), with_bias ? dbias.data() : nullptr,
                 with_pre ? dpre.data() : nullptr);
    be.omp->synchronize();

    const std::string what = describe(g, with_bias, with_pre);
    const double atol = gemm_atol(g);
    auto C = dC.to_vector();
    check_close(C, Cref, atol, kRtol, what + ": C");
    if (with_pre) check_close(dpre.to_vector(), pre_ref, atol, kRtol, what + ": pre");
    return C;
}

constexpr Act kActs[] = {Act::identity, Act::relu, Act::tanh, Act::gelu};

// The GPU bodies of the omp gemm (omp_gemm::gemm_league_tiled: the nvptx64 variants) run here on
// host cores as one team of `threads` threads, on host memory: the same tile loop, team-shared
// staging, barriers and edge handling as on a GPU, so their indexing is checked for every
// transpose case without one. A host team never has the 256 threads a GPU team has; the body's
// thread rounds (slot = round + thread) cover the others, which this exercises too.
template <int TM, int BK>
void check_tiled(const Gemm& p, bool with_bias, bool with_pre, std::uint64_t seed, int threads)
{
    const std::size_t M = p.m, N = p.n, K = p.k;
    const auto A = random_floats(M * K, 4 * seed), B = random_floats(K * N, 4 * seed + 1);
    const auto bias = random_floats(N, 4 * seed + 2);
    auto C0 = random_floats(M * N, 4 * seed + 3);
    if (p.beta == 0.0f) C0.assign(M * N, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> Cref = C0, pre_ref(M * N), C = C0, pre(M * N);
    make_backend("ref")->gemm(p, A.data(), B.data(), Cref.data(), with_bias ? bias.data() : nullptr,
                              with_pre ? pre_ref.data() : nullptr);

    const omp_gemm::GemmArgs g{p.m, p.n, p.k, p.trans_a, p.trans_b, p.alpha, p.beta, p.act};
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    omp_gemm::gemm_league_tiled<TM, BK>(g, A.data(), B.data(), C.data(), with_bias ? bias.data() : nullptr,
                                        with_pre ? pre.data() : nullptr);
    omp_set_num_threads(saved);

    const std::string what = "tiled " + std::to_string(16 * TM) + "x" + std::to_string(16 * TM) + ", " +
                             std::to_string(threads) + " threads: " + describe(p, with_bias, with_pre);
    check_close(C, Cref, gemm_atol(p), kRtol, what + ": C");
    if (with_pre) check_close(pre, pre_ref, gemm_atol(p), kRtol, what + ": pre");
}

} // namespace

// The GPU bodies (both register blocks) on shapes below, at and past one tile in each dimension,
// every transpose case, the epilogue options rotating; thread counts that divide 256 and not.
BOOST_AUTO_TEST_CASE(gpu_bodies_on_host_cores)
{
    struct Shape {
        int M, N, K;
    };
    const Shape shapes[] = {{1, 1, 1}, {7, 33, 127}, {64, 64, 16}, {130, 129, 17}, {101, 263, 300}};
    std::uint64_t seed = 7000;
    int n = 0;
    for (const Shape& s : shapes)
        for (int t = 0; t < 4; ++t, ++n) {
            const Gemm g{t >= 2, t % 2 == 1, s.M, s.N, s.K, n % 5 == 0 ? -1.5f : 1.0f, n % 3 == 0 ? 0.0f : 0.5f,
                         kActs[n % 4]};
            const int threads = n % 2 == 0 ? 3 : 16;
            check_tiled<4, 16>(g, n % 2 == 0, (n / 2) % 2 == 0, seed++, threads);
            check_tiled<8, 8>(g, n % 2 == 1, (n / 2) % 2 == 1, seed++, threads);
        }
}

// The full option cross product on a shape that spans several cache blocks in M, N and K (so
// the K-slice accumulation and the edge blocks are exercised), for every transpose case.
BOOST_AUTO_TEST_CASE(every_option_every_transpose)
{
    Backends be;
    std::uint64_t seed = 1;
    for (int t = 0; t < 4; ++t)
        for (Act act : kActs)
            for (bool with_bias : {false, true})
                for (bool with_pre : {false, true})
                    for (float beta : {0.0f, 0.75f}) {
                        const Gemm g{t >= 2, t % 2 == 1, 101, 263, 300, 1.0f, beta, act};
                        check_gemm(be, g, with_bias, with_pre, seed++);
                    }
}

// Small shapes: every combination of 1, 7, 33, 127 in M, N, K, every transpose case; the
// epilogue options rotate so that each appears with many shapes.
BOOST_AUTO_TEST_CASE(small_shapes)
{
    Backends be;
    const int sizes[] = {1, 7, 33, 127};
    std::uint64_t seed = 1000;
    int n = 0;
    for (int M : sizes)
        for (int N : sizes)
            for (int K : sizes)
                for (int t = 0; t < 4; ++t, ++n) {
                    const float beta = n % 3 == 0 ? 0.0f : -0.5f;
                    const float alpha = n % 5 == 0 ? -1.5f : 1.0f;
                    const Gemm g{t >= 2, t % 2 == 1, M, N, K, alpha, beta, kActs[(n / 4) % 4]};
                    check_gemm(be, g, n % 2 == 0, (n / 2) % 2 == 0, seed++);
                }
}

// One dimension above 1000 at a time (more than ten cache blocks along it, a ragged last one),
// the others small, and two large dimensions at once; every transpose case.
BOOST_AUTO_TEST_CASE(large_shapes)
{
    Backends be;
    struct Shape {
        int M, N, K;
    };
    const Shape shapes[] = {{1031, 33, 127}, {7, 1029, 127}, {33, 7, 1100}, {1, 1029, 1100}, {1025, 1, 33},
                            {1027, 1030, 7}, {127, 300, 1027}};
    std::uint64_t seed = 5000;
    int n = 0;
    for (const Shape& s : shapes)
        for (int t = 0; t < 4; ++t, ++n) {
            const Gemm g{t >= 2, t % 2 == 1, s.M, s.N, s.K, 0.5f, n % 2 == 0 ? 0.0f : 1.0f, kActs[n % 4]};
            check_gemm(be, g, true, n % 3 == 0, seed++);
        }
}

// Determinism: each element's sum order is fixed by the blocking, not by the thread count or
// the schedule, so repeated runs and runs on 1 thread give the same bits.
BOOST_AUTO_TEST_CASE(bitwise_reproducible_across_runs_and_threads)
{
    Backends be;
    const Gemm g{false, true, 200, 300, 530, 1.0f, 0.0f, Act::gelu};
    const auto first = check_gemm(be, g, true, false, 9000);
    const auto again = check_gemm(be, g, true, false, 9000);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto serial = check_gemm(be, g, true, false, 9000);
    omp_set_num_threads(threads);
    BOOST_CHECK(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0);
    BOOST_CHECK(std::memcmp(first.data(), serial.data(), first.size() * sizeof(float)) == 0);
}

// Bad arguments reach neither kernel: the Backend throws ompml::Error naming the argument.
BOOST_AUTO_TEST_CASE(bad_arguments_throw)
{
    Backends be;
    for (Backend* b : {be.ref.get(), be.omp.get()}) {
        DeviceBuffer<float> A(b->memory(), 16), B(b->memory(), 16), C(b->memory(), 16);
        auto expect = [](const std::string& text) {
            return [text](const Error& e) {
                BOOST_TEST_MESSAGE("Error: " << e.what());
                return std::string(e.what()).find(text) != std::string::npos;
            };
        };
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{false, false, 0, 4, 4}, A.data(), B.data(), C.data()), Error,
                              expect("gemm: m = 0, must be >= 1"));
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{false, false, 4, 4, -3}, A.data(), B.data(), C.data()), Error,
                              expect("gemm: k = -3, must be >= 1"));
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{true, false, 4, 0, 4}, A.data(), B.data(), C.data()), Error,
                              expect("gemm: n = 0, must be >= 1"));
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{false, false, 4, 4, 4}, nullptr, B.data(), C.data()), Error,
                              expect("gemm: A is null"));
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{false, true, 4, 4, 4}, A.data(), nullptr, C.data()), Error,
                              expect("gemm: B is null"));
        BOOST_CHECK_EXCEPTION(b->gemm(Gemm{false, false, 4, 4, 4}, A.data(), B.data(), nullptr), Error,
                              expect("gemm: C is null"));
    }
}
