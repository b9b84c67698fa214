// What is specific to the omp gemm: its GPU bodies (omp_gemm::gemm_league_tiled, the nvptx64
// variants) run on host cores against the sequential reference, so their tiling is checked
// without a GPU. gemm itself, on every backend, is in test_kernels.cpp.
#define BOOST_TEST_MODULE gemm
#include "support.hpp"

#include "kernels/gemm_omp.hpp"

#include <omp.h>

#include <limits>

using namespace ompml;
using namespace ompml::test;

namespace {

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
    check_close(C, Cref, gemm_atol(p), kGemmRtol, what + ": C");
    if (with_pre) check_close(pre, pre_ref, gemm_atol(p), kGemmRtol, what + ": pre");
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
            const Gemm g{t >= 2,      t % 2 == 1, s.M, s.N, s.K, n % 5 == 0 ? -1.5f : 1.0f, n % 3 == 0 ? 0.0f : 0.5f,
                         kActs[n % 4]};
            const int threads = n % 2 == 0 ? 3 : 16;
            check_tiled<4, 16>(g, n % 2 == 0, (n / 2) % 2 == 0, seed++, threads);
            check_tiled<8, 8>(g, n % 2 == 1, (n / 2) % 2 == 1, seed++, threads);
        }
}
