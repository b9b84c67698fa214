// What is specific to the omp gemm: its GPU bodies (omp_gemm::gemm_league_tiled, the nvptx64
// variants) run on host cores against the sequential reference, so their tiling is checked
// without a GPU; and the bf16 gemm (mixed precision) of every backend this build has, against the
// ref bf16 gemm, including the omp gemm's host bodies on every path the CPU has (AMX, AVX512-BF16, and the
// float-panel fallback). The float gemm on every backend is in test_kernels.cpp.
#define BOOST_TEST_MODULE gemm
#include "support.hpp"

#include "kernels/gemm_omp.hpp"

#include "core/check.hpp"

#include <omp.h>

#include <cstdlib>
#include <limits>
#include <memory>

using namespace ompml;
using namespace ompml::test;

namespace {

constexpr Act kActs[] = {Act::identity, Act::relu, Act::tanh, Act::gelu};

// A shape for the GPU bodies on host cores: each dimension cut to one more tile than a full
// one and its own remainder (M, N: tiles of 128, two of the 64 x 64 body's; K: of 16, two of
// BK 8), so every case still has a full tile, a partial one and a tile after a full one in each
// dimension. More full tiles run the same staging and products again and check nothing new.
constexpr int gpu_body_dim(int d, int tile) { return d <= 2 * tile ? d : tile + (d % tile == 0 ? tile : d % tile); }
Gemm gpu_body_shape(Gemm g)
{
    g.m = gpu_body_dim(g.m, 128);
    g.n = gpu_body_dim(g.n, 128);
    g.k = gpu_body_dim(g.k, 16);
    return g;
}

// The host threads of the emulated GPU team for case n. Shapes within one 64 x 64 tile run as a
// team of 3 threads (256 is no multiple of 3: the last round's slots past 255 only stage) or 16
// (a divisor), so the staging split among threads and the barriers between staging and products
// run for real; the other shapes run on 1 thread, which takes every slot in turn (256 rounds)
// through the same tile loop, staging and edge handling. Why not a team everywhere: a team's
// every round and k step ends at barriers, and host threads that do not all hold a core at once
// (16 threads on 2 cores, or 3 beside one competing busy loop) wait at each one for the
// scheduler: with teams on every shape this test ran 16 s idle but minutes on a loaded 2-core
// machine, even with OMP_WAIT_POLICY=passive (which tests/CMakeLists.txt sets, so that waiting
// threads sleep rather than spin and keep a preempted one off its core).
int team_threads(const Gemm& g, int n)
{
    if (g.m > 64 || g.n > 64) return 1;
    return n % 2 == 0 ? 3 : 16;
}

// The GPU bodies of the omp gemm (omp_gemm::gemm_league_tiled: the nvptx64 variants) run here on
// host cores as one team of `threads` threads, on host memory: the same tile loop, team-shared
// staging, barriers and edge handling as on a GPU, so their indexing is checked for every
// transpose case without one. A host team never has the 256 threads a GPU team has; the body's
// thread rounds (slot = round + thread) cover the others, which this exercises too. With beta ==
// 0 the body runs again with a bf16 output (the bf16 weight gradient of --grad-dtype bf16, a
// hidden layer's bf16 output), which must be to_bf16 of the first run's C, bit for bit; and once
// more with the activation backward fused into the epilogue (the dX gemm), against ref's.
template <int TM, int BK>
void check_tiled(const Gemm& p, bool with_bias, bool with_pre, std::uint64_t seed, int threads)
{
    const std::size_t M = p.m, N = p.n, K = p.k;
    const auto A = random_floats(M * K, 4 * seed), B = random_floats(K * N, 4 * seed + 1);
    const auto bias = random_floats(N, 4 * seed + 2);
    auto C0 = random_floats(M * N, 4 * seed + 3);
    if (p.beta == 0.0f) C0.assign(M * N, std::numeric_limits<float>::quiet_NaN());
    const auto ref = make_backend("ref");
    std::vector<float> Cref = C0, pre_ref(M * N), C = C0, pre(M * N);
    ref->gemm(p, A.data(), B.data(), Cref.data(), with_bias ? bias.data() : nullptr,
              with_pre ? pre_ref.data() : nullptr);
    Gemm back = p; // the dX gemm of a layer: the activation's backward on pre = Z, no bias
    back.act_backward = true;
    auto Z = random_floats(M * N, 4 * seed + 5, -4.0f, 4.0f);
    std::vector<float> Cback_ref = C0, Cback = C0;
    if (p.beta != 0.0f) ref->gemm(back, A.data(), B.data(), Cback_ref.data(), nullptr, Z.data());

    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    omp_gemm::gemm_league_tiled<TM, BK>(p, A.data(), B.data(), C.data(), with_bias ? bias.data() : nullptr,
                                        with_pre ? pre.data() : nullptr);
    std::vector<bf16> C16(M * N, bf16{0x7fc1}); // NaN: must be overwritten
    if (p.beta == 0.0f)
        omp_gemm::gemm_league_tiled<TM, BK>(p, A.data(), B.data(), C16.data(), with_bias ? bias.data() : nullptr,
                                            nullptr);
    else
        omp_gemm::gemm_league_tiled<TM, BK>(back, A.data(), B.data(), Cback.data(), nullptr, Z.data());
    omp_set_num_threads(saved);

    const std::string what = "tiled " + std::to_string(16 * TM) + "x" + std::to_string(16 * TM) + ", " +
        std::to_string(threads) + " threads: " + describe(p, with_bias, with_pre);
    check_close(C, Cref, gemm_atol(p), kGemmRtol, what + ": C");
    if (with_pre) check_close(pre, pre_ref, gemm_atol(p), kGemmRtol, what + ": pre");
    if (p.beta != 0.0f) {
        // act' is at most ~1.13 (gelu): the gemm's bound, widened a little.
        check_close(Cback, Cback_ref, 2 * gemm_atol(p), 2 * kGemmRtol, what + ": activation backward");
        return;
    }
    std::size_t diff = 0;
    for (std::size_t i = 0; i < C.size(); ++i) diff += C16[i].bits != to_bf16(C[i]).bits;
    BOOST_CHECK_MESSAGE(diff == 0, what << ": bf16 output != to_bf16(C) at " << diff << " elements");
}

} // namespace

// The GPU bodies (both register blocks) on shapes below, at and past one tile in each dimension
// (cut by gpu_body_shape), every transpose case, the epilogue options rotating; teams of thread
// counts that divide 256 and not (team_threads).
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
            const Gemm g = gpu_body_shape(Gemm{t >= 2, t % 2 == 1, s.M, s.N, s.K, n % 5 == 0 ? -1.5f : 1.0f,
                                               n % 3 == 0 ? 0.0f : 0.5f, kActs[n % 4]});
            const int threads = team_threads(g, n);
            check_tiled<4, 16>(g, n % 2 == 0, (n / 2) % 2 == 0, seed++, threads);
            check_tiled<8, 8>(g, n % 2 == 1, (n / 2) % 2 == 1, seed++, threads);
        }
}

// ---------------------------------------------------------------------------------------------
// The bf16 gemm (mixed precision): bf16 operands, float accumulation, the float epilogue, and a
// float or bf16 output.
//
// Tolerance, per element: |C - ref| <= |alpha| * gamma_K * S_ij + 16 eps + kGemmRtol * |ref|,
// where S = |op(A)| |op(B)| (the sum of |a b| over k, computed exactly by the ref bf16 gemm on the
// absolute values) and gamma_K = K u / (1 - K u), u = 2^-24. Why: a product of two bf16 values
// (8-bit significands) is exact in float (16 bits), so the ONLY difference from the reference
// (the exact sum in double, rounded once) is the float accumulation, in whatever order and
// grouping a backend uses (AMX and VDPBF16PS add pairs of products, the GPU bodies add k in tile steps): the
// classic worst-case bound of a float sum of K terms, gamma_K * sum |terms|, holds for every
// order. The 16 eps floor and the rtol cover the float epilogue (beta * C, bias, activation
// within a few ulp), as for the float gemm (support.hpp). AMX's TDPBF16PS and VDPBF16PS flush subnormal
// inputs and results to zero (it ignores MXCSR): the operands here are uniform in [-1, 1], whose
// bf16 values and products are normal, so that cannot show; a flushed subnormal would be within
// the floor anyway. An indexing or epilogue mistake is O(1), far above the bound.
// A bf16 output must equal to_bf16(C) of the float output bit for bit (the backend's own C: one
// rounding, nearest even).

namespace {

std::vector<bf16> random_bf16(std::size_t n, std::uint64_t stream)
{
    const auto f = random_floats(n, stream);
    std::vector<bf16> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = to_bf16(f[i]);
    return v;
}

// Every backend this build has but ref, made here (cuda only with a device): the bf16 gemm of
// each runs against ref's.
std::vector<std::unique_ptr<Backend>>& bf16_backends()
{
    static std::vector<std::unique_ptr<Backend>> v = [] {
        std::vector<std::unique_ptr<Backend>> out;
        for (const auto& name : available_backends()) {
            if (name == "ref") continue;
            try {
                out.push_back(make_backend(name));
            } catch (const Error& e) {
                BOOST_TEST_MESSAGE("bf16 gemm: backend " << name << " not tested: " << e.what());
            }
        }
        return out;
    }();
    return v;
}

struct Bf16Case {
    std::vector<bf16> A, B;
    std::vector<float> bias, C0, Cref, pre_ref, S;
};

Bf16Case make_bf16_case(const Gemm& p, bool with_bias, bool with_pre, std::uint64_t seed)
{
    const std::size_t M = p.m, N = p.n, K = p.k;
    Bf16Case c;
    c.A = random_bf16(M * K, 4 * seed);     // (M, K) or (K, M)
    c.B = random_bf16(K * N, 4 * seed + 1); // (K, N) or (N, K)
    c.bias = random_floats(N, 4 * seed + 2);
    c.C0 = random_floats(M * N, 4 * seed + 3);
    if (p.beta == 0.0f) c.C0.assign(M * N, std::numeric_limits<float>::quiet_NaN());
    c.Cref = c.C0;
    c.pre_ref.assign(M * N, 0.0f);
    const auto ref = make_backend("ref");
    ref->gemm(p, c.A.data(), c.B.data(), c.Cref.data(), with_bias ? c.bias.data() : nullptr,
              with_pre ? c.pre_ref.data() : nullptr);
    // S = |op(A)| |op(B)|, exactly (the ref sums in double)
    auto absA = c.A, absB = c.B;
    for (auto& x : absA) x.bits &= 0x7fff;
    for (auto& x : absB) x.bits &= 0x7fff;
    Gemm s = p;
    s.alpha = 1.0f;
    s.beta = 0.0f;
    s.act = Act::identity;
    c.S.assign(M * N, 0.0f);
    ref->gemm(s, absA.data(), absB.data(), c.S.data());
    return c;
}

void check_bf16_result(const Gemm& p, const Bf16Case& c, const std::vector<float>& C, const std::vector<float>& pre,
                       bool with_pre, const std::vector<bf16>* C16, const std::string& what)
{
    const double u = std::ldexp(1.0, -24), eps = std::numeric_limits<float>::epsilon();
    const double gamma = p.k * u / (1.0 - p.k * u);
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    auto scan = [&](const std::vector<float>& got, const std::vector<float>& ref) {
        for (std::size_t i = 0; i < got.size(); ++i) {
            const double tol = std::fabs(p.alpha) * gamma * c.S[i] + 16 * eps + kGemmRtol * std::fabs(ref[i]);
            const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
            const double excess = std::isnan(err) ? 1e30 : err - tol;
            if (excess > 0) ++bad;
            if (excess > worst_excess) {
                worst_excess = excess;
                worst = i;
            }
        }
    };
    scan(C, c.Cref);
    BOOST_CHECK_MESSAGE(bad == 0,
                        what << ": C: " << bad << " of " << C.size() << " elements beyond the bound; worst at " << worst
                             << ": got " << C[worst] << ", ref " << c.Cref[worst]);
    if (with_pre) {
        bad = 0;
        worst_excess = -1.0;
        scan(pre, c.pre_ref);
        BOOST_CHECK_MESSAGE(bad == 0,
                            what << ": pre: " << bad << " elements beyond the bound; worst at " << worst << ": got "
                                 << pre[worst] << ", ref " << c.pre_ref[worst]);
    }
    if (C16 != nullptr) {
        std::size_t diff = 0;
        for (std::size_t i = 0; i < C.size(); ++i) diff += (*C16)[i].bits != to_bf16(C[i]).bits;
        BOOST_CHECK_MESSAGE(diff == 0, what << ": C16 != to_bf16(C) at " << diff << " elements");
    }
}

// The bf16 gemm with a float output against ref; with c16 and beta == 0, again with a bf16
// output (starting as NaN), which must be to_bf16 of the float output bit for bit.
void check_bf16(Backend& be, const Gemm& p, bool with_bias, bool with_pre, bool with_c16, std::uint64_t seed,
                const std::string& tag)
{
    const std::size_t MN = static_cast<std::size_t>(p.m) * p.n;
    const Bf16Case c = make_bf16_case(p, with_bias, with_pre, seed);
    auto dA = DeviceBuffer<bf16>(be.memory(), c.A), dB = DeviceBuffer<bf16>(be.memory(), c.B);
    auto dbias = upload(be, c.bias), dC = upload(be, c.C0);
    DeviceBuffer<float> dpre(be.memory(), MN);
    be.gemm(p, dA.data(), dB.data(), dC.data(), with_bias ? dbias.data() : nullptr, with_pre ? dpre.data() : nullptr);
    const bool c16 = with_c16 && p.beta == 0.0f;
    DeviceBuffer<bf16> dC16(be.memory(), std::vector<bf16>(c16 ? MN : 0, bf16{0x7fc1}));
    if (c16) be.gemm(p, dA.data(), dB.data(), dC16.data(), with_bias ? dbias.data() : nullptr);
    be.synchronize();
    const auto C16 = dC16.to_vector();
    check_bf16_result(p, c, dC.to_vector(), dpre.to_vector(), with_pre, c16 ? &C16 : nullptr,
                      std::string("bf16 ") + be.name() + tag + ": " + describe(p, with_bias, with_pre) +
                          (c16 ? " + bf16 output" : ""));
}

// Shapes around the host bodies' blocks (float panels 6 x 64, KC 384, NC 1024; AMX 32 x 32, k in
// steps of 32, KC 1024, NC 1024; AVX512-BF16 6 x 64, k in pairs, KC 768) and the GPU tiles (64, 128): 1, odd K, ragged edges, several K slices
// with beta != 0 (the workspace), more than one column block.
struct Shape {
    int M, N, K;
};
constexpr Shape kBf16Shapes[] = {{1, 1, 1},       {7, 33, 5},      {33, 7, 127},   {130, 129, 67},
                                 {101, 263, 300}, {129, 65, 1100}, {64, 1030, 40}, {45, 31, 513}};

template <class Body>
void for_each_bf16_case(Body&& body)
{
    std::uint64_t seed = 11000;
    int n = 0;
    for (const Shape& s : kBf16Shapes)
        for (int t = 0; t < 4; ++t, ++n) {
            const Gemm g{t >= 2,      t % 2 == 1, s.M, s.N, s.K, n % 5 == 0 ? -1.5f : 1.0f, n % 3 == 0 ? 0.0f : 0.5f,
                         kActs[n % 4]};
            body(g, n % 2 == 0, (n / 2) % 2 == 0, n % 3 != 1, seed++);
        }
}

} // namespace

// The bf16 gemm of every backend against the ref bf16 gemm.
BOOST_AUTO_TEST_CASE(bf16_gemm_every_backend)
{
    BOOST_REQUIRE(!bf16_backends().empty());
    for (auto& be : bf16_backends())
        for_each_bf16_case([&](const Gemm& g, bool bias, bool pre, bool c16, std::uint64_t seed) {
            check_bf16(*be, g, bias, pre, c16, seed, "");
        });
}

// The omp gemm's host bodies for bf16 operands on every path this CPU has, forced in turn with
// OMPML_HOST_GEMM (the test above took the default, the best of them): AMX tiles, AVX512-BF16
// dot products, and the fp32 fallback (bf16 widened into the float panels). A path the CPU
// lacks, or an unknown name, is refused with an error naming the variable and the value.
BOOST_AUTO_TEST_CASE(bf16_gemm_omp_every_host_path)
{
    for (auto& be : bf16_backends()) {
        if (std::string(be->name()) != "omp" || be->on_gpu()) continue;
        int ran = 0;
        for (const char* path : {"amx", "avx512bf16", "fp32"}) {
            setenv("OMPML_HOST_GEMM", path, 1);
            try {
                BOOST_TEST(host_gemm_name(host_gemm_path()) == std::string(path));
            } catch (const Error& e) {
                const std::string msg = e.what();
                BOOST_TEST(msg.find(std::string("OMPML_HOST_GEMM=") + path) != std::string::npos, msg);
                BOOST_TEST(std::string(path) != "fp32", "the fp32 path is on every CPU: " << msg);
                BOOST_TEST_MESSAGE("bf16 gemm: path " << path << " not on this CPU: " << msg);
                continue;
            }
            ++ran;
            for_each_bf16_case([&](const Gemm& g, bool bias, bool pre, bool c16, std::uint64_t seed) {
                check_bf16(*be, g, bias, pre, c16, seed, std::string(" (OMPML_HOST_GEMM=") + path + ")");
            });
        }
        BOOST_TEST(ran >= 1);
        setenv("OMPML_HOST_GEMM", "avx512", 1);
        BOOST_CHECK_EXCEPTION(host_gemm_path(), Error, [](const Error& e) {
            return std::string(e.what()).find("OMPML_HOST_GEMM='avx512': unknown path") != std::string::npos;
        });
        unsetenv("OMPML_HOST_GEMM");
    }
}

// The GPU bodies of the bf16 gemm (gemm_league_tiled on bf16 operands) on host cores, as for
// float above (shapes cut by gpu_body_shape, threads by team_threads).
BOOST_AUTO_TEST_CASE(bf16_gpu_bodies_on_host_cores)
{
    for_each_bf16_case([&](Gemm p, bool bias, bool pre, bool c16, std::uint64_t seed) {
        p = gpu_body_shape(p);
        const Bf16Case c = make_bf16_case(p, bias, pre, seed);
        const std::size_t MN = static_cast<std::size_t>(p.m) * p.n;
        const bool with_c16 = c16 && p.beta == 0.0f;
        const int saved = omp_get_max_threads();
        omp_set_num_threads(team_threads(p, static_cast<int>(seed)));
        for (int large = 0; large < 2; ++large) {
            std::vector<float> C = c.C0, pre_v(MN);
            std::vector<bf16> C16(MN, bf16{0x7fc1});
            float* pp = pre ? pre_v.data() : nullptr;
            const float* bp = bias ? c.bias.data() : nullptr;
            if (large) {
                omp_gemm::gemm_league_tiled<8, 8>(p, c.A.data(), c.B.data(), C.data(), bp, pp);
                if (with_c16) omp_gemm::gemm_league_tiled<8, 8>(p, c.A.data(), c.B.data(), C16.data(), bp, nullptr);
            } else {
                omp_gemm::gemm_league_tiled<4, 16>(p, c.A.data(), c.B.data(), C.data(), bp, pp);
                if (with_c16) omp_gemm::gemm_league_tiled<4, 16>(p, c.A.data(), c.B.data(), C16.data(), bp, nullptr);
            }
            check_bf16_result(p, c, C, pre_v, pre, with_c16 ? &C16 : nullptr,
                              std::string("bf16 tiled ") + (large ? "128x128" : "64x64") + ": " +
                                  describe(p, bias, pre));
        }
        omp_set_num_threads(saved);
    });
}
