// One kernel suite for every backend the build has: each kernel of each backend under test
// against the sequential ref backend (the oracle, double accumulators), on random data with
// awkward sizes (1, 7, 33, 127, > 1000, and gemms big enough for the GPU's large tiles), plus
// argument validation (bad sizes, null pointers) with the message it gives. Buffers live in each
// backend's own memory space, so in the offload-check build a kernel that touches host memory or
// forgets a mapping fails here as it would on a GPU.
//
// Backends under test: every one of available_backends() but ref that can be made here (cuda
// only where a CUDA device is visible). With --gpu-only (ctest test_kernels_gpu, label gpu, run
// with OMP_TARGET_OFFLOAD=MANDATORY so an omp kernel can never quietly run on the host): only
// those whose kernels run on a GPU; with none the program prints "no GPU: skipped" and exits 77,
// which ctest reports as skipped. --help and --list_content work without any backend.
//
// The host suite and the GPU suite were once two programs with the same comparisons; where they
// bounded the same comparison differently, the looser bound is kept (both reasons are given):
// a device may contract multiply-adds differently and its math library is a few ulp off the
// host's, and either bound is far below what an indexing or missed-term mistake costs.
// test_gemm.cpp keeps what is specific to the omp gemm: its GPU bodies run on host cores.
#define BOOST_TEST_MODULE kernels
#define BOOST_TEST_NO_MAIN
#include "support.hpp"

#include "backend/subnormals.hpp"
#include "core/check.hpp"

#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <memory>

using namespace ompml;
using namespace ompml::test;

namespace {

constexpr int kDims[] = {1, 7, 33, 127, 1031};
constexpr std::size_t kLengths[] = {1, 7, 33, 127, 1031, 100003};
constexpr Act kActs[] = {Act::identity, Act::relu, Act::tanh, Act::gelu};

// float32 unit roundoff.
constexpr double kEps = 5.96e-8;

// The backends under test, made once in main; ref is the oracle.
std::vector<std::unique_ptr<Backend>>& tested()
{
    static std::vector<std::unique_ptr<Backend>> backends;
    return backends;
}
Backend& ref()
{
    static const std::unique_ptr<Backend> be = make_backend("ref");
    return *be;
}

// Sets this thread's subnormal mode while it lives, then the environment's again (the mode
// make_backend set). The bf16 rounding checks' reference computes with subnormal floats.
struct SubnormalMode {
    explicit SubnormalMode(Subnormals mode) { BOOST_REQUIRE(set_subnormals(mode)); }
    ~SubnormalMode() { set_subnormals(subnormals_from_env()); }
    SubnormalMode(const SubnormalMode&) = delete;
    SubnormalMode& operator=(const SubnormalMode&) = delete;
};

// Runs body(backend) for each backend under test, naming it in every failure message.
template <class F>
void for_each_backend(F&& body)
{
    for (auto& be : tested()) BOOST_TEST_CONTEXT("backend " << be->name())
        {
            body(*be);
        }
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t stream)
{
    const Rng rng(1234, stream);
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(rng.below(i, 256));
    return v;
}

std::vector<std::int32_t> random_labels(std::size_t n, int classes, std::uint64_t stream)
{
    const Rng rng(1234, stream);
    std::vector<std::int32_t> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::int32_t>(rng.below(i, static_cast<std::uint32_t>(classes)));
    return v;
}

std::string shape(long long a, long long b = -1)
{
    return "(" + std::to_string(a) + (b >= 0 ? ", " + std::to_string(b) : std::string()) + ")";
}

// Tolerance for a float sum of n terms of size <= 1 against a double reference: worst case
// about n * eps * max|x| (4 eps per term leaves room for a beta * out term); a float running
// sum whose partial sums grow like sqrt(n) picks up about u * n / 3, and 1e-6 + 2e-7 * n was
// the GPU suite's bound (~10x that, still far below any indexing or missed-term error, >= 1e-2).
double sum_atol(long n) { return 1e-6 + 4 * kEps * static_cast<double>(n); }

// Runs f and checks it throws ompml::Error whose message contains `needle`.
void check_throws(const std::function<void()>& f, const std::string& needle)
{
    try {
        f();
        BOOST_ERROR("expected ompml::Error containing '" << needle << "', nothing thrown");
    } catch (const Error& e) {
        const std::string msg = e.what();
        BOOST_CHECK_MESSAGE(msg.find(needle) != std::string::npos, "message '" << msg << "' lacks '" << needle << "'");
    }
}

} // namespace

// ---------------------------------------------------------------------------------------------
// gemm: every transpose case x every activation x bias or not x pre or not x beta zero or not.
// With beta == 0, C starts as NaN: a kernel must not read it.

namespace {

// Runs one gemm on ref and on every backend under test and compares C (and pre); returns each
// backend's C, in the order of tested(), for callers that compare runs with each other. With
// beta == 0, every other seed also runs the gemm with a bf16 output C (the next layer's bf16
// input, or the bf16 weight gradient of --grad-dtype bf16), which must be to_bf16 of the
// backend's own float C, bit for bit; it starts as NaN, so it must be overwritten.
std::vector<std::vector<float>> check_gemm(const Gemm& g, bool with_bias, bool with_pre, std::uint64_t seed)
{
    const std::size_t M = g.m, N = g.n, K = g.k;
    const auto A = random_floats(M * K, 4 * seed);     // (M, K) or (K, M)
    const auto B = random_floats(K * N, 4 * seed + 1); // (K, N) or (N, K)
    const auto bias = random_floats(N, 4 * seed + 2);  // (N)
    auto C0 = random_floats(M * N, 4 * seed + 3);      // (M, N)
    if (g.beta == 0.0f) C0.assign(M * N, std::numeric_limits<float>::quiet_NaN());

    std::vector<float> Cref = C0, pre_ref(M * N);
    ref().gemm(g, A.data(), B.data(), Cref.data(), with_bias ? bias.data() : nullptr,
               with_pre ? pre_ref.data() : nullptr);
    const std::string what = describe(g, with_bias, with_pre);
    std::vector<std::vector<float>> out;
    const bool with_c16 = seed % 2 == 0 && g.beta == 0.0f;
    for_each_backend([&](Backend& be) {
        auto dA = upload(be, A), dB = upload(be, B), dbias = upload(be, bias), dC = upload(be, C0);
        DeviceBuffer<float> dpre(be.memory(), M * N);
        be.gemm(g, dA.data(), dB.data(), dC.data(), with_bias ? dbias.data() : nullptr,
                with_pre ? dpre.data() : nullptr);
        be.synchronize();
        out.push_back(dC.to_vector());
        check_close(out.back(), Cref, gemm_atol(g), kGemmRtol, what + ": C");
        if (with_pre) check_close(dpre.to_vector(), pre_ref, gemm_atol(g), kGemmRtol, what + ": pre");
        if (!with_c16) return;
        DeviceBuffer<bf16> dC16(be.memory(), std::vector<bf16>(M * N, bf16{0x7fc1})); // NaN
        be.gemm(g, dA.data(), dB.data(), dC16.data(), with_bias ? dbias.data() : nullptr);
        const std::vector<bf16> C16 = dC16.to_vector();
        std::size_t diff = 0;
        for (std::size_t i = 0; i < C16.size(); ++i) diff += C16[i].bits != to_bf16(out.back()[i]).bits;
        BOOST_CHECK_MESSAGE(diff == 0, what << ": bf16 C != to_bf16(float C) at " << diff << " elements");
    });
    return out;
}

} // namespace

// The full option cross product on a shape that spans several cache blocks in M, N and K (so
// the K-slice accumulation and the edge blocks are exercised), for every transpose case.
BOOST_AUTO_TEST_CASE(gemm_every_option_every_transpose)
{
    std::uint64_t seed = 1;
    for (int t = 0; t < 4; ++t)
        for (Act act : kActs)
            for (bool with_bias : {false, true})
                for (bool with_pre : {false, true})
                    for (float beta : {0.0f, 0.75f}) {
                        const Gemm g{t >= 2, t % 2 == 1, 101, 263, 300, 1.0f, beta, act};
                        check_gemm(g, with_bias, with_pre, seed++);
                    }
}

// Small shapes: every combination of 1, 7, 33, 127 in M, N, K, every transpose case; the
// epilogue options rotate so that each appears with many shapes.
BOOST_AUTO_TEST_CASE(gemm_small_shapes)
{
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
                    check_gemm(g, n % 2 == 0, (n / 2) % 2 == 0, seed++);
                }
}

namespace {

struct Shape {
    int M, N, K;
};

// Every shape in every transpose case; alpha, beta, the activation, bias and pre rotate.
void check_gemm_shapes(std::initializer_list<Shape> shapes, std::uint64_t seed)
{
    int n = 0;
    for (const Shape& s : shapes)
        for (int t = 0; t < 4; ++t, ++n) {
            const Gemm g{t >= 2,      t % 2 == 1, s.M, s.N, s.K, n % 3 == 0 ? -1.5f : 1.0f, n % 2 == 0 ? 0.0f : 0.5f,
                         kActs[n % 4]};
            check_gemm(g, n % 3 != 1, n % 4 < 2, seed++);
        }
}

} // namespace

// One dimension above 1000 at a time (more than ten cache blocks along it, a ragged last one),
// the others small, and two large dimensions at once.
BOOST_AUTO_TEST_CASE(gemm_large_shapes)
{
    check_gemm_shapes({{1031, 33, 127},
                       {7, 1029, 127},
                       {33, 7, 1100},
                       {1, 1029, 1100},
                       {1025, 1, 33},
                       {1027, 1030, 7},
                       {127, 300, 1027}},
                      5000);
}

// Shapes whose op(B) the omp host gemm reads where it lies rather than packed (a float B (K, N),
// not transposed, N a multiple of 16, at most 64 row panels of 6 per thread): the MLP's first
// layer, a ragged last row panel and a 16-column last column panel, several K slices, the rows
// split between threads (300 x 32), 768 rows (64 panels per thread: in place) and 775 (65:
// packed); a transposed B is always packed.
BOOST_AUTO_TEST_CASE(gemm_b_in_place_shapes)
{
    check_gemm_shapes({{128, 512, 784}, {7, 48, 33}, {131, 80, 1000}, {300, 32, 5}, {768, 32, 9}, {775, 32, 9}}, 6000);
}

// The GPU tilings' edges: 1x1x1; odd sizes around the 64/128 tile edges; a long K; 1536^2 has
// 144 tiles of 128x128, at least kGemmLargeTiles, so the large-tile kernels are covered.
BOOST_AUTO_TEST_CASE(gemm_tile_edges_and_large_tiles)
{
    struct Shape {
        int m, n, k;
    };
    const Shape shapes[] = {{1, 1, 1},       {7, 33, 5},      {33, 7, 127},    {127, 1, 33},
                            {65, 129, 1500}, {1031, 257, 70}, {1536, 1536, 40}};
    int variant = 0;
    for (const Shape s : shapes)
        for (int t = 0; t < 4; ++t) {
            ++variant;
            const float alpha = variant % 2 ? 1.0f : 0.75f, beta = variant % 3 == 0 ? 0.5f : 0.0f;
            const Gemm g{(t & 1) != 0, (t & 2) != 0, s.m, s.n, s.k, alpha, beta, kActs[variant % 4]};
            check_gemm(g, variant % 2 == 0, variant % 4 != 1, 7000 + variant);
        }
}

// Determinism: each element's sum order is fixed by the blocking, not by the thread count or
// the schedule, so repeated runs and runs on 1 host thread give the same bits. The second
// product's op(B) is packed by one host thread and read in place by two (the rows split), and
// the host body's K slices must not follow that choice.
BOOST_AUTO_TEST_CASE(gemm_bitwise_reproducible_across_runs_and_threads)
{
    const Gemm gemms[] = {{false, true, 200, 300, 530, 1.0f, 0.0f, Act::gelu},
                          {false, false, 512, 64, 530, 1.0f, 0.0f, Act::identity}};
    for (const Gemm& g : gemms) {
        const auto first = check_gemm(g, true, false, 9000);
        const auto again = check_gemm(g, true, false, 9000);
        const int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        const auto serial = check_gemm(g, true, false, 9000);
        omp_set_num_threads(threads);
        for (std::size_t b = 0; b < first.size(); ++b) {
            BOOST_TEST_CONTEXT(describe(g, true, false) << ", backend " << tested()[b]->name())
            {
                BOOST_CHECK(std::memcmp(first[b].data(), again[b].data(), first[b].size() * sizeof(float)) == 0);
                BOOST_CHECK(std::memcmp(first[b].data(), serial[b].data(), first[b].size() * sizeof(float)) == 0);
            }
        }
    }
}

// The dX gemm with the previous layer's activation backward fused into its epilogue
// (Gemm::act_backward, as backward runs it): on every backend, bit for bit the plain gemm
// followed by activation_backward on the same backend (what backward did before the fusion),
// and within the gemm tolerance of ref's fused gemm (the reference triple loop). Every
// activation, every transpose case, beta 0 and not, float and bf16 operands, shapes across the
// host body's blocks and the GPU tiles.
BOOST_AUTO_TEST_CASE(gemm_fused_activation_backward)
{
    struct Shape {
        int M, N, K;
    };
    const Shape shapes[] = {{7, 33, 5}, {128, 784, 512}, {129, 65, 1100}, {33, 1030, 40}};
    std::uint64_t seed = 12000;
    for (const Shape& sh : shapes)
        for (const Act act : kActs)
            for (int t = 0; t < 4; ++t, ++seed) {
                Gemm g{t >= 2, t % 2 == 1, sh.M, sh.N, sh.K, 1.0f, seed % 3 == 0 ? 0.5f : 0.0f, act};
                g.act_backward = true;
                const std::size_t MN = static_cast<std::size_t>(sh.M) * sh.N;
                const auto A = random_floats(static_cast<std::size_t>(sh.M) * sh.K, 4 * seed);
                const auto B = random_floats(static_cast<std::size_t>(sh.K) * sh.N, 4 * seed + 1);
                const auto Z = random_floats(MN, 4 * seed + 2, -4.0f, 4.0f); // the pre-activations
                const auto C0 = random_floats(MN, 4 * seed + 3);
                auto Zref = Z; // read, never written
                std::vector<float> Cref = C0;
                ref().gemm(g, A.data(), B.data(), Cref.data(), nullptr, Zref.data());
                Gemm plain = g;
                plain.act = Act::identity;
                plain.act_backward = false;
                const std::string what = describe(g, false, false) + " act_backward";
                for_each_backend([&](Backend& be) {
                    auto dA = upload(be, A), dB = upload(be, B), dZ = upload(be, Z), dC = upload(be, C0);
                    auto dU = upload(be, C0);
                    be.gemm(g, dA.data(), dB.data(), dC.data(), nullptr, dZ.data());
                    be.gemm(plain, dA.data(), dB.data(), dU.data());
                    be.activation_backward(act, MN, dZ.data(), dU.data(), dU.data());
                    be.synchronize();
                    const auto fused = dC.to_vector(), unfused = dU.to_vector();
                    BOOST_CHECK_MESSAGE(std::memcmp(fused.data(), unfused.data(), MN * sizeof(float)) == 0,
                                        what << ": fused differs from gemm + activation_backward");
                    // act' is at most ~1.13 (gelu): the gemm's bound, widened a little.
                    check_close(fused, Cref, 2 * gemm_atol(g), 2 * kGemmRtol, what + ": against ref");
                    BOOST_CHECK_MESSAGE(dZ.to_vector() == Z, what << ": pre (Z) was written");
                    // bf16 operands: the same fusion on the bf16 gemm, against its own unfused pair.
                    if (g.beta != 0.0f) return;
                    std::vector<bf16> A16(A.size()), B16(B.size());
                    for (std::size_t i = 0; i < A.size(); ++i) A16[i] = to_bf16(A[i]);
                    for (std::size_t i = 0; i < B.size(); ++i) B16[i] = to_bf16(B[i]);
                    auto dA16 = upload(be, A16), dB16 = upload(be, B16);
                    be.gemm(g, dA16.data(), dB16.data(), dC.data(), nullptr, dZ.data());
                    be.gemm(plain, dA16.data(), dB16.data(), dU.data());
                    be.activation_backward(act, MN, dZ.data(), dU.data(), dU.data());
                    const auto fused16 = dC.to_vector(), unfused16 = dU.to_vector();
                    BOOST_CHECK_MESSAGE(std::memcmp(fused16.data(), unfused16.data(), MN * sizeof(float)) == 0,
                                        what << " (bf16 operands): fused differs from gemm + activation_backward");
                });
            }
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels

BOOST_AUTO_TEST_CASE(activation_backward_all_activations)
{
    for (const Act act : kActs) {
        for (const std::size_t n : kLengths) {
            const auto Z = random_floats(n, 10, -4.0f, 4.0f), dY = random_floats(n, 11);
            const std::string what =
                std::string("activation_backward act=") + act_name(act) + " n=" + std::to_string(n);
            std::vector<float> dXref(n);
            ref().activation_backward(act, n, Z.data(), dY.data(), dXref.data());
            // tanh differs between host cores (act_tanh, within 1 ulp) and GPUs (their libm, within
            // 2 ulp): a few ulp of the derivative; identity/relu are exact. atol covers derivatives
            // near 0.
            const double atol = 1e-6, rtol = 1e-5;
            for_each_backend([&](Backend& be) {
                auto dZ = upload(be, Z), ddY = upload(be, dY);
                DeviceBuffer<float> ddX(be.memory(), n);
                be.activation_backward(act, n, dZ.data(), ddY.data(), ddX.data());
                check_close(ddX.to_vector(), dXref, atol, rtol, what);

                // In place (dX aliases dY), the way backward passes call it.
                be.activation_backward(act, n, dZ.data(), ddY.data(), ddY.data());
                check_close(ddY.to_vector(), dXref, atol, rtol, what + " in place");
            });
        }
    }
}

// The host's tanh (act_tanh, kernels/activation.hpp) against tanh in double rounded once: within
// 1 ulp on every 997th float of the whole range (4.3 million, both signs, subnormals to the
// largest) and around its branch point (0.625) and cap (10); exactly +-0 at +-0, +-1 at +-Inf,
// NaN at NaN. Then through every backend's gemm epilogue.
BOOST_AUTO_TEST_CASE(tanh_within_one_ulp)
{
    // Floats in the order of their values, so that ulps are differences.
    const auto ordered = [](float f) {
        const std::int64_t b = __builtin_bit_cast(std::int32_t, f);
        return b < 0 ? std::int64_t{INT32_MIN} - b : b;
    };
    // Ulps of `got` from tanh(x) rounded once.
    const auto ulps = [&](float got, float x) -> std::int64_t {
        const std::int64_t d = ordered(got) - ordered(static_cast<float>(std::tanh(static_cast<double>(x))));
        return d < 0 ? -d : d;
    };
    std::vector<float> xs;
    for (std::uint64_t u = 0; u < (1ULL << 32); u += 997) {
        const float x = __builtin_bit_cast(float, static_cast<std::uint32_t>(u));
        if (!std::isnan(x)) xs.push_back(x);
    }
    for (const float at : {0.625f, 9.0f, 10.0f})
        for (int d = -1000; d <= 1000; ++d) xs.push_back(std::nextafter(at, d < 0 ? 0.0f : 20.0f) + d * 1e-6f);
    std::int64_t worst = 0;
    float worst_x = 0.0f;
    for (const float x : xs) {
        const std::int64_t d = ulps(act_tanh(x), x);
        if (d > worst) worst = d, worst_x = x;
    }
    BOOST_TEST(worst <= 1, "act_tanh is " << worst << " ulp from tanh at " << worst_x);
    const float inf = INFINITY, nan = std::nanf("");
    BOOST_TEST(act_tanh(inf) == 1.0f);
    BOOST_TEST(act_tanh(-inf) == -1.0f);
    BOOST_TEST((act_tanh(0.0f) == 0.0f && !std::signbit(act_tanh(0.0f))));
    BOOST_TEST((act_tanh(-0.0f) == 0.0f && std::signbit(act_tanh(-0.0f))));
    BOOST_TEST(std::isnan(act_tanh(nan)));

    // C = tanh(z * 1) with z as a column: every z reaches the epilogue, the vector loop the
    // backends run it in, unchanged. Each backend compiles it for its own device (the offload
    // check's virtual device without FMA contraction; GPUs call their libm, 2 ulp).
    const auto z = random_floats(1031, 12, -12.0f, 12.0f);
    const int M = static_cast<int>(z.size());
    const std::vector<float> one{1.0f};
    const Gemm g{false, true, M, 1, 1, 1.0f, 0.0f, Act::tanh};
    for_each_backend([&](Backend& be) {
        auto dA = upload(be, z), dB = upload(be, one);
        DeviceBuffer<float> dC(be.memory(), z.size());
        be.gemm(g, dA.data(), dB.data(), dC.data(), nullptr);
        const std::vector<float> C = dC.to_vector();
        std::int64_t most = 0;
        for (std::size_t i = 0; i < z.size(); ++i) most = std::max(most, ulps(C[i], z[i]));
        BOOST_TEST(most <= (be.on_gpu() ? 2 : 1), "the epilogue's tanh is " << most << " ulp from tanh");
    });
}

// relu and NaN/Inf, against PyTorch 1.13 (/usr/bin/python3, torch on the CPU):
//   x = torch.tensor([nan, inf, -inf, 0., -0., 1., -1., -2., 3.], requires_grad=True)
//   torch.relu(x)                            -> [nan, inf, 0, 0, -0, 1, 0, 0, 3]
//   torch.relu(x).backward(g)                -> x.grad = g where relu(x) > 0 or is nan, else +0:
//   g = [2, nan, 5, nan, 3, nan, nan, -4, -0] -> [2, nan, 0, 0, 0, nan, 0, 0, -0]
// (ompml gives +0 for relu(-0), PyTorch -0, which changes no later value; every zero of the
// backward is +0 in both.)
BOOST_AUTO_TEST_CASE(relu_propagates_nan_as_pytorch)
{
    const float nan = std::nanf(""), inf = INFINITY;
    // The nine cases repeated 41 times (369 elements), so the host's vector loops meet them too,
    // not only a scalar remainder loop.
    const auto repeat = [](const std::vector<float>& v) {
        std::vector<float> r;
        for (int i = 0; i < 41; ++i) r.insert(r.end(), v.begin(), v.end());
        return r;
    };
    const auto z = repeat({nan, inf, -inf, 0.0f, -0.0f, 1.0f, -1.0f, -2.0f, 3.0f});
    const auto g = repeat({2.0f, nan, 5.0f, nan, 3.0f, nan, nan, -4.0f, -0.0f});
    const auto fwd = repeat({nan, inf, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 3.0f});
    const auto bwd = repeat({2.0f, nan, 0.0f, 0.0f, 0.0f, nan, 0.0f, 0.0f, -0.0f});
    // Equal as values and in sign (a zero is +0), NaN where PyTorch has NaN (check_close would
    // count NaN as a mismatch).
    const auto same = [](const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
        BOOST_REQUIRE_EQUAL(got.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i)
            BOOST_CHECK_MESSAGE(std::isnan(want[i])
                                    ? std::isnan(got[i])
                                    : got[i] == want[i] && std::signbit(got[i]) == std::signbit(want[i]),
                                what << "[" << i << "]: got " << got[i] << ", PyTorch " << want[i]);
    };
    std::vector<float> host(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) host[i] = act_forward(Act::relu, z[i]);
    same(host, fwd, "act_forward (shared body)");

    // Forward through the gemm epilogue, the only place the backends apply relu: C = relu(A * I)
    // with A = z as a column, so every z reaches relu unchanged (z * 1 + 0 is exact, NaN and
    // Inf included).
    const int M = static_cast<int>(z.size());
    const Gemm gm{false, true, M, 1, 1, 1.0f, 0.0f, Act::relu};
    const std::vector<float> one{1.0f};
    std::vector<float> Cref(M);
    ref().gemm(gm, z.data(), one.data(), Cref.data(), nullptr);
    same(Cref, fwd, "ref gemm + relu");
    std::vector<float> dXref(z.size());
    ref().activation_backward(Act::relu, z.size(), z.data(), g.data(), dXref.data());
    same(dXref, bwd, "ref relu backward");

    for_each_backend([&](Backend& be) {
        auto dA = upload(be, z), dB = upload(be, one);
        DeviceBuffer<float> dC(be.memory(), M);
        be.gemm(gm, dA.data(), dB.data(), dC.data(), nullptr);
        same(dC.to_vector(), fwd, "gemm + relu");

        auto dZ = upload(be, z), dG = upload(be, g);
        DeviceBuffer<float> dX(be.memory(), z.size());
        be.activation_backward(Act::relu, z.size(), dZ.data(), dG.data(), dX.data());
        same(dX.to_vector(), bwd, "relu backward");
        be.activation_backward(Act::relu, z.size(), dZ.data(), dG.data(), dG.data());
        same(dG.to_vector(), bwd, "relu backward in place");
    });
}

BOOST_AUTO_TEST_CASE(normalize_u8_matches_reference)
{
    for (const std::size_t n : kLengths) {
        const auto X = random_bytes(n, 20);
        std::vector<float> Yref(n);
        ref().normalize_u8(n, X.data(), Yref.data(), 1.0f / 255.0f, -0.5f);
        for_each_backend([&](Backend& be) {
            auto dX = upload(be, X);
            DeviceBuffer<float> dY(be.memory(), n);
            be.normalize_u8(n, dX.data(), dY.data(), 1.0f / 255.0f, -0.5f);
            // One multiply-add per element: at most a rounding apart (fused or not): 1 ulp.
            check_close(dY.to_vector(), Yref, 1e-7, 2e-7, "normalize_u8 n=" + std::to_string(n));
        });
    }
}

BOOST_AUTO_TEST_CASE(fill_matches_reference)
{
    for (const std::size_t n : kLengths) {
        const std::string sz = " n=" + std::to_string(n);
        std::vector<float> filled(n);
        ref().fill(n, filled.data(), 0.375f);
        for_each_backend([&](Backend& be) {
            DeviceBuffer<float> d(be.memory(), n);
            be.fill(n, d.data(), 0.375f);
            check_close(d.to_vector(), filled, 0.0, 0.0, "fill" + sz); // a store: exact
            DeviceBuffer<bf16> h(be.memory(), n);
            be.fill(n, h.data(), 0.3f); // rounded once: 0.30078125
            std::size_t bad = 0;
            for (const bf16 v : h.to_vector()) bad += v.bits != to_bf16(0.3f).bits;
            BOOST_CHECK_MESSAGE(bad == 0, "fill (bf16)" << sz << ": " << bad << " elements not bf16(0.3)");
        });
    }
}

BOOST_AUTO_TEST_CASE(sum_squares_matches_reference)
{
    for (const std::size_t n : kLengths) {
        const auto X = random_floats(n, 40, -3.0f, 3.0f);
        const double want = ref().sum_squares(n, X.data());
        for_each_backend([&](Backend& be) {
            auto dX = upload(be, X);
            const double got = be.sum_squares(n, dX.data());
            // Float squares are exact in double; positive terms summed in double, in another
            // order: relative error below n * 2^-53; 1e-11 covers n = 1e5 with margin.
            BOOST_CHECK_MESSAGE(std::fabs(got - want) <= 1e-11 * want,
                                "sum_squares n=" << n << ": got " << got << ", ref " << want);
        });
    }
}

// The bf16 overload (the norm of a gradient summed in bf16) against ref's float sum of the same
// values widened: bf16 widens exactly, so only the order of the double sum differs.
BOOST_AUTO_TEST_CASE(sum_squares_of_bf16_matches_reference)
{
    for (const std::size_t n : kLengths) {
        const auto X = random_floats(n, 41, -3.0f, 3.0f);
        std::vector<bf16> H(n);
        std::vector<float> widened(n);
        for (std::size_t i = 0; i < n; ++i) {
            H[i] = to_bf16(X[i]);
            widened[i] = to_float(H[i]);
        }
        const double want = ref().sum_squares(n, widened.data());
        for_each_backend([&](Backend& be) {
            auto dH = upload(be, H);
            const double got = be.sum_squares(n, dH.data());
            BOOST_CHECK_MESSAGE(std::fabs(got - want) <= 1e-11 * want,
                                "sum_squares (bf16) n=" << n << ": got " << got << ", ref " << want);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions over (rows, cols)

// The bias gradient: float against ref, and in bf16 (the gradient the ranks exchange with
// --grad-dtype bf16) bit for bit the rounding of the backend's own float sum.
BOOST_AUTO_TEST_CASE(col_sum_float_and_bf16)
{
    std::vector<std::pair<int, int>> shapes;
    for (const int rows : kDims)
        for (const int cols : kDims) shapes.emplace_back(rows, cols);
    // Long columns, wide rows, and a column count around the CUDA twin's 32-column tiles.
    for (const auto& s : {std::pair{1031, 65}, std::pair{3, 2049}, std::pair{4099, 10}}) shapes.push_back(s);
    for (const auto& [rows, cols] : shapes) {
        const auto X = random_floats(static_cast<std::size_t>(rows) * cols, 50);
        std::vector<float> want(cols);
        ref().col_sum(rows, cols, X.data(), want.data());
        for_each_backend([&](Backend& be) {
            auto dX = upload(be, X);
            DeviceBuffer<float> dout(be.memory(), std::vector<float>(cols, std::nanf(""))); // overwritten
            be.col_sum(rows, cols, dX.data(), dout.data());
            // A float sum of `rows` terms (|x| <= 1) against a double one (sum_atol).
            const std::vector<float> got = dout.to_vector();
            check_close(got, want, sum_atol(rows), 1e-6, "col_sum " + shape(rows, cols));
            DeviceBuffer<bf16> d16(be.memory(), std::vector<bf16>(cols, bf16{0x7fc1}));
            be.col_sum(rows, cols, dX.data(), d16.data());
            const std::vector<bf16> got16 = d16.to_vector();
            std::size_t diff = 0;
            for (int c = 0; c < cols; ++c) diff += got16[c].bits != to_bf16(got[c]).bits;
            BOOST_CHECK_MESSAGE(diff == 0,
                                "col_sum (bf16) " << shape(rows, cols) << ": " << diff
                                                  << " columns differ from to_bf16 of the float sum");
        });
    }
}

// The reproducible mode's sums (--reproducible-ranks; kernels/tree_sum.hpp): a gemm whose K is a
// global batch's rows in N chunks, and the column sum likewise. On every backend and for every
// rank count P dividing N, the P ranks' shares (each the chunks [r N/P, (r+1) N/P), computed as
// that rank would) added in the split tree over ranks give bit for bit the whole batch's result
// computed by one rank; and the whole batch's result is within a float sum's tolerance of the
// in-order one. Batches whose rows do not divide evenly (chunks of unequal size, and chunks with
// no rows), float and bf16 outputs.
BOOST_AUTO_TEST_CASE(chunked_sums_are_subtrees_of_the_batch_tree)
{
    const int out = 33, in = 70;
    for (const int rows : {5, 37, 128, 200})
        for (const int chunks : {1, 2, 4, 8}) {
            const auto dZ = random_floats(static_cast<std::size_t>(rows) * out, 60 + rows); // (rows, OUT)
            const auto X = random_floats(static_cast<std::size_t>(rows) * in, 61 + rows);   // (rows, IN)
            const std::string what = "rows " + std::to_string(rows) + ", " + std::to_string(chunks) + " chunks";
            Gemm g{true, false, out, in, rows};
            std::vector<float> plain(static_cast<std::size_t>(out) * in), dbias(out);
            ref().gemm(g, dZ.data(), X.data(), plain.data());
            for_each_backend([&](Backend& be) {
                auto ddZ = upload(be, dZ), dX = upload(be, X);
                // The ranks' shares: rank r's rows are the chunks [r N/P, (r + 1) N/P).
                const auto share = [&](int first, int count, auto* out_type) {
                    using O = std::remove_pointer_t<decltype(out_type)>;
                    const KChunks kc{rows, chunks, first, count};
                    const long r0 = first * static_cast<long>(rows) / chunks, nrows = chunk_row(kc, count);
                    Gemm gs = g;
                    gs.k = static_cast<int>(nrows);
                    gs.kc = kc;
                    DeviceBuffer<O> dW(be.memory(), static_cast<std::size_t>(out) * in), db(be.memory(), out);
                    if (nrows > 0) {
                        be.gemm(gs, ddZ.data() + r0 * out, dX.data() + r0 * in, dW.data());
                        be.col_sum(static_cast<int>(nrows), out, ddZ.data() + r0 * out, db.data(), kc);
                    } else { // a rank without rows: its gradient is zero (Mlp::loss_backward)
                        be.fill(dW.size(), dW.data(), 0.0f);
                        be.fill(db.size(), db.data(), 0.0f);
                    }
                    std::vector<O> w = dW.to_vector(), b = db.to_vector();
                    w.insert(w.end(), b.begin(), b.end());
                    return w;
                };
                const std::vector<float> whole = share(0, chunks, static_cast<float*>(nullptr));
                const std::vector<bf16> whole16 = share(0, chunks, static_cast<bf16*>(nullptr));
                for (int P = 2; P <= chunks; P *= 2) {
                    std::vector<std::vector<float>> parts;
                    for (int r = 0; r < P; ++r)
                        parts.push_back(share(r * (chunks / P), chunks / P, static_cast<float*>(nullptr)));
                    std::size_t diff = 0;
                    for (std::size_t i = 0; i < whole.size(); ++i) {
                        TreeSum<float> t;
                        for (int r = 0; r < P; ++r) t.add(parts[r][i]);
                        const float v = t.total();
                        diff += std::memcmp(&v, &whole[i], sizeof v) != 0;
                    }
                    BOOST_CHECK_MESSAGE(diff == 0,
                                        what << ", " << P << " ranks: " << diff
                                             << " elements differ from the whole batch's tree");
                }
                std::size_t diff16 = 0;
                for (std::size_t i = 0; i < whole.size(); ++i) diff16 += whole16[i].bits != to_bf16(whole[i]).bits;
                BOOST_CHECK_MESSAGE(diff16 == 0,
                                    what << ": the bf16 output is not the rounded float one at " << diff16);
                // Against the in-order sums (ref's gemm, and the column sum on the host): the
                // same float-sum bound as any order.
                const std::vector<float> wpart(whole.begin(), whole.begin() + plain.size());
                check_close(wpart, plain, sum_atol(rows), 1e-5, what + ": dW against the in-order sum");
                for (int c = 0; c < out; ++c) {
                    double s = 0;
                    for (int r = 0; r < rows; ++r) s += dZ[static_cast<std::size_t>(r) * out + c];
                    dbias[c] = static_cast<float>(s);
                }
                const std::vector<float> bpart(whole.begin() + plain.size(), whole.end());
                check_close(bpart, dbias, sum_atol(rows), 1e-5, what + ": db against the in-order sum");
            });
        }
}

// ---------------------------------------------------------------------------------------------
// Softmax + cross-entropy

BOOST_AUTO_TEST_CASE(softmax_xent_with_and_without_gradient)
{
    std::vector<std::pair<int, int>> shapes;
    for (const int B : kDims)
        for (const int C : kDims) shapes.emplace_back(B, C);
    // MLP-like class counts (10), many classes, a large batch of few classes.
    for (const auto& s :
         {std::pair{1, 10}, std::pair{7, 10}, std::pair{1031, 10}, std::pair{33, 1000}, std::pair{5000, 7}})
        shapes.push_back(s);
    for (const auto& [B, C] : shapes) {
        const auto logits = random_floats(static_cast<std::size_t>(B) * C, 70, -6.0f, 6.0f);
        const auto labels = random_labels(B, C, 71);
        const float scale = 1.0f / static_cast<float>(B);
        const std::string what = "softmax_xent " + shape(B, C);
        std::vector<float> dref(static_cast<std::size_t>(B) * C);
        const XentStats want = ref().softmax_xent(B, C, logits.data(), labels.data(), scale, dref.data());
        for_each_backend([&](Backend& be) {
            auto dlogits = upload(be, logits);
            auto dlabels = upload(be, labels);
            DeviceBuffer<float> dgrad(be.memory(), dref.size());
            for (const bool with_grad : {false, true}) {
                const XentStats got =
                    be.softmax_xent(B, C, dlogits.data(), dlabels.data(), scale, with_grad ? dgrad.data() : nullptr);
                // Per row the kernels work in float, ref in double: the log of a sum of C
                // exponentials is off by about C * eps, exp/log within a few ulp (~1e-6
                // relative per row); rows add up in double.
                const double tol = 1e-5 * B + std::max(4 * kEps * C, 1e-5) * std::fabs(want.loss_sum);
                BOOST_CHECK_MESSAGE(std::fabs(got.loss_sum - want.loss_sum) <= tol,
                                    what << " grad=" << with_grad << ": loss " << got.loss_sum << ", ref "
                                         << want.loss_sum);
                // The argmax is the same float comparisons on both sides: exact.
                BOOST_CHECK_MESSAGE(got.correct == want.correct,
                                    what << " grad=" << with_grad << ": correct " << got.correct << ", ref "
                                         << want.correct);
            }
            // Gradient scale * (p - onehot): p in float has relative error about C * eps; atol
            // relative to scale, the size of the largest entry.
            check_close(dgrad.to_vector(), dref, 1e-5 * scale, std::max(4 * kEps * C, 1e-5), what + " dlogits");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Optimizers

BOOST_AUTO_TEST_CASE(sgd_with_and_without_momentum_and_decay)
{
    const SgdStep steps[] = {{0.1f, 0.0f, 0.0f}, {0.1f, 0.9f, 0.0f}, {0.05f, 0.0f, 1e-2f}, {0.05f, 0.9f, 1e-2f}};
    for (const SgdStep& s : steps)
        for (const std::size_t n : kLengths) {
            const auto W0 = random_floats(n, 80), M0 = random_floats(n, 82, -0.1f, 0.1f);
            std::vector<std::vector<float>> G; // a new gradient each step
            for (int step = 0; step < 3; ++step) G.push_back(random_floats(n, 81 + 10 * step));
            auto W = W0, M = M0;
            for (int step = 0; step < 3; ++step) ref().sgd_update(n, s, W.data(), G[step].data(), M.data());
            const std::string what = "sgd momentum=" + std::to_string(s.momentum) +
                " wd=" + std::to_string(s.weight_decay) + " n=" + std::to_string(n);
            for_each_backend([&](Backend& be) {
                auto dW = upload(be, W0), dM = upload(be, M0);
                for (int step = 0; step < 3; ++step) { // three steps: the momentum buffer carries over
                    auto dG = upload(be, G[step]);
                    be.sgd_update(n, s, dW.data(), dG.data(), dM.data());
                }
                // The same inline body on every side; contraction into FMA may differ by a
                // rounding per operation, three steps of a few operations each.
                check_close(dW.to_vector(), W, 1e-6, 1e-5, what + " W");
                check_close(dM.to_vector(), M, 1e-6, 1e-5, what + " M");
            });
        }
}

// Adam and AdamW from zero moments over steps 1, 2, 3 (bias correction large) and then jumps to
// 10 and 1000 (nearly none), and from random moments over steps 1, 5, 9; a new gradient each step.
BOOST_AUTO_TEST_CASE(adam_and_adamw_over_several_steps)
{
    for (const bool decoupled : {false, true})
        for (const float wd : {0.0f, 0.01f})
            for (const bool zero_start : {true, false})
                for (const std::size_t n : kLengths) {
                    const auto W0 = random_floats(n, 90);
                    const auto M0 = zero_start ? std::vector<float>(n, 0.0f) : random_floats(n, 1000, -0.1f, 0.1f);
                    const auto V0 = zero_start ? std::vector<float>(n, 0.0f) : random_floats(n, 1100, 0.0f, 0.01f);
                    const std::vector<long long> ts =
                        zero_start ? std::vector<long long>{1, 2, 3, 10, 1000} : std::vector<long long>{1, 5, 9};
                    auto W = W0, M = M0, V = V0;
                    std::vector<std::vector<float>> Ws, Ms, Vs, G; // ref's state after each step
                    AdamStep s;
                    s.lr = 1e-2f;
                    s.weight_decay = wd;
                    s.decoupled = decoupled;
                    for (const long long t : ts) {
                        G.push_back(random_floats(n, 91 + static_cast<std::uint64_t>(t)));
                        s.t = t;
                        ref().adam_update(n, s, W.data(), G.back().data(), M.data(), V.data());
                        Ws.push_back(W), Ms.push_back(M), Vs.push_back(V);
                    }
                    const std::string what = std::string(decoupled ? "adamw" : "adam") + " wd=" + std::to_string(wd) +
                        (zero_start ? "" : " random moments") + " n=" + std::to_string(n);
                    for_each_backend([&](Backend& be) {
                        auto dW = upload(be, W0), dM = upload(be, M0), dV = upload(be, V0);
                        for (std::size_t i = 0; i < ts.size(); ++i) {
                            auto dG = upload(be, G[i]);
                            s.t = ts[i];
                            be.adam_update(n, s, dW.data(), dG.data(), dM.data(), dV.data());
                            // Same body; sqrt and divide are correctly rounded on host, nvptx and
                            // CUDA, so only FMA contraction differs: a few roundings per step, and
                            // an update of size lr adds an absolute error of about lr * eps.
                            const std::string at = what + " t=" + std::to_string(ts[i]);
                            check_close(dW.to_vector(), Ws[i], 1e-6, 1e-5, at + " W");
                            check_close(dM.to_vector(), Ms[i], 1e-6, 1e-5, at + " M");
                            check_close(dV.to_vector(), Vs[i], 1e-7, 1e-5, at + " V");
                        }
                    });
                }
}

// ---------------------------------------------------------------------------------------------
// bf16: the conversion (core/bf16.hpp) against an independent reference, its edge cases, the
// convert kernels, and the optimizer steps' bf16 weight copy.

namespace {

std::uint32_t bits_of(float f)
{
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    return u;
}
float float_of(std::uint32_t u)
{
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

// The bf16 nearest x, ties to the even pattern, found by comparing distances in double to the
// two bf16 values around x (truncation, and the next pattern away from zero; past the largest
// bf16 the next is 2^128, which rounds to Inf): a different computation from to_bf16's
// bias-and-truncate. NaN gives any NaN pattern (checked separately).
std::uint16_t nearest_bf16(float x)
{
    const std::uint16_t lo = static_cast<std::uint16_t>(bits_of(x) >> 16), hi = static_cast<std::uint16_t>(lo + 1);
    if ((lo & 0x7fff) == 0x7f80) return lo; // +-Inf
    const double a = std::fabs(static_cast<double>(float_of(static_cast<std::uint32_t>(lo) << 16)));
    const double b = (hi & 0x7fff) == 0x7f80
        ? std::ldexp(1.0, 128)
        : std::fabs(static_cast<double>(float_of(static_cast<std::uint32_t>(hi) << 16)));
    const double ax = std::fabs(static_cast<double>(x));
    if (ax - a < b - ax) return lo;
    if (ax - a > b - ax) return hi;
    return (lo & 1) == 0 ? lo : hi;
}

} // namespace

// Host cores flush subnormals by default (backend/subnormals.hpp): Adam's first moment of a
// weight whose gradient has stopped decays from the smallest normal float to 0, not to the
// subnormal beta1 * FLT_MIN, on every thread of the kernel (100003 elements: every OpenMP
// thread has a share), and the weights stay the same bits. OMPML_SUBNORMALS=keep gives the
// subnormal, so the check can tell the two apart.
BOOST_AUTO_TEST_CASE(adam_flushes_subnormal_moments_on_host_cores)
{
    const std::size_t n = 100003;
    const auto W0 = random_floats(n, 95);
    const std::vector<float> G(n, 0.0f), M0(n, std::numeric_limits<float>::min()), V0(n, 1e-4f);
    AdamStep s;
    s.t = 1000;
    Backend& oracle = ref(); // made first: make_backend applies OMPML_SUBNORMALS
    for (const Subnormals mode : {Subnormals::flush, Subnormals::keep}) {
        const SubnormalMode in_mode(mode);
        volatile float m = std::numeric_limits<float>::min();
        const float want = s.beta1 * m; // in this thread, in this mode
        BOOST_REQUIRE_EQUAL(want == 0.0f, mode == Subnormals::flush);
        auto run = [&](Backend& be) {
            if (be.on_gpu()) return; // GPUs keep subnormals at full speed; not touched
            auto dW = upload(be, W0), dG = upload(be, G), dM = upload(be, M0), dV = upload(be, V0);
            be.adam_update(n, s, dW.data(), dG.data(), dM.data(), dV.data());
            const auto M = dM.to_vector(), W = dW.to_vector();
            std::size_t bad = 0;
            for (std::size_t i = 0; i < n; ++i) bad += M[i] != want;
            BOOST_CHECK_MESSAGE(
                bad == 0, subnormals_text(mode) << ": " << bad << " of " << n << " first moments are not " << want);
            BOOST_CHECK_MESSAGE(W == W0, subnormals_text(mode) << ": the weights changed");
        };
        BOOST_TEST_CONTEXT("backend ref") { run(oracle); }
        for_each_backend(run);
    }
}

// OMPML_SUBNORMALS takes flush or keep; any other value stops the host backends with its name.
BOOST_AUTO_TEST_CASE(subnormal_mode_from_the_environment)
{
    const char* before = std::getenv("OMPML_SUBNORMALS");
    const std::string saved = before != nullptr ? before : "";
    const SubnormalMode restore(subnormals_from_env()); // the environment's mode again at the end
    setenv("OMPML_SUBNORMALS", "fast", 1);
    BOOST_CHECK_EXCEPTION(make_backend("omp"), Error, [](const Error& e) {
        return std::string(e.what()) == "OMPML_SUBNORMALS='fast': unknown mode (known: flush, keep)";
    });
    setenv("OMPML_SUBNORMALS", "keep", 1);
    BOOST_CHECK(subnormals_from_env() == Subnormals::keep);
    make_backend("ref");
    BOOST_CHECK(current_subnormals() == Subnormals::keep);
    unsetenv("OMPML_SUBNORMALS");
    make_backend("ref");
    BOOST_CHECK(current_subnormals() == Subnormals::flush);
    if (before != nullptr) setenv("OMPML_SUBNORMALS", saved.c_str(), 1);
}

BOOST_AUTO_TEST_CASE(bf16_conversion_edge_cases)
{
    const SubnormalMode ieee(Subnormals::keep); // nearest_bf16 subtracts subnormal floats
    struct Case {
        std::uint32_t in;
        std::uint16_t out;
        const char* what;
    };
    const Case cases[] = {
        {0x3f800000, 0x3f80, "1 is exact"},
        {0x3f808000, 0x3f80, "tie between 1 and 1+2^-7 goes to the even 1"},
        {0x3f818000, 0x3f82, "tie above an odd pattern goes up to the even one"},
        {0x3f808001, 0x3f81, "just above the tie rounds up"},
        {0x3f807fff, 0x3f80, "just below the tie rounds down"},
        {0xbf808001, 0xbf81, "negative values round by magnitude"},
        {0x7f800000, 0x7f80, "+Inf stays +Inf"},
        {0xff800000, 0xff80, "-Inf stays -Inf"},
        {0x7f7f0000, 0x7f7f, "the largest bf16 is exact"},
        {0x7f7f7fff, 0x7f7f, "below the midpoint to 2^128 stays finite"},
        {0x7f7f8000, 0x7f80, "the midpoint to 2^128 is a tie to the even pattern: Inf"},
        {0x7f7fffff, 0x7f80, "FLT_MAX overflows to Inf"},
        {0xff7fffff, 0xff80, "-FLT_MAX overflows to -Inf"},
        {0x00000000, 0x0000, "+0"},
        {0x80000000, 0x8000, "-0 keeps its sign"},
        {0x00000001, 0x0000, "the smallest float subnormal rounds to 0"},
        {0x00008000, 0x0000, "a subnormal tie goes to the even 0"},
        {0x00018000, 0x0002, "a subnormal tie above an odd pattern goes up"},
        {0x00010000, 0x0001, "the smallest bf16 subnormal is kept, not flushed"},
        {0x807fffff, 0x8080, "the largest negative subnormal rounds up to the smallest normal"},
    };
    for (const Case& c : cases) {
        BOOST_TEST_CONTEXT(c.what)
        {
            BOOST_CHECK_EQUAL(to_bf16(float_of(c.in)).bits, c.out);
            BOOST_CHECK_EQUAL(nearest_bf16(float_of(c.in)), c.out); // the reference agrees
            BOOST_CHECK_EQUAL(bits_of(to_float(bf16{c.out})), static_cast<std::uint32_t>(c.out) << 16);
        }
    }
    // NaN stays NaN, with its sign, whatever its payload: quiet, signalling, and a payload in
    // the low half only (which truncation would turn into Inf).
    for (const std::uint32_t nan : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
        const std::uint16_t h = to_bf16(float_of(nan)).bits;
        BOOST_CHECK_MESSAGE(std::isnan(to_float(bf16{h})), std::hex << nan << " -> " << h << " is not NaN");
        BOOST_CHECK_EQUAL(h >> 15, nan >> 31);
    }
}

// Every exponent and many mantissas: 2^20 random patterns, all 65536 bf16 patterns (exact), and
// the midpoints between consecutive bf16 values (ties).
BOOST_AUTO_TEST_CASE(bf16_conversion_matches_nearest_value)
{
    const SubnormalMode ieee(Subnormals::keep); // nearest_bf16 subtracts subnormal floats
    const Rng rng(77, 1);
    std::size_t checked = 0;
    auto check = [&](std::uint32_t u) {
        const float x = float_of(u);
        if (std::isnan(x)) return;
        const std::uint16_t got = to_bf16(x).bits, want = nearest_bf16(x);
        if (got != want) BOOST_ERROR(std::hex << "to_bf16(0x" << u << ") = 0x" << got << ", nearest is 0x" << want);
        ++checked;
    };
    for (std::uint32_t i = 0; i < (1u << 20); ++i)
        check(static_cast<std::uint32_t>(rng.below(2 * i, 1u << 16)) << 16 |
              static_cast<std::uint32_t>(rng.below(2 * i + 1, 1u << 16)));
    for (std::uint32_t h = 0; h < (1u << 16); ++h) {
        check(h << 16);          // exact
        check(h << 16 | 0x8000); // tie
    }
    BOOST_TEST_MESSAGE("bf16 conversions checked: " << checked);
}

BOOST_AUTO_TEST_CASE(convert_kernels_match_reference)
{
    for (const std::size_t n : kLengths) {
        auto X = random_floats(n, 60, -3.0f, 3.0f);
        const float specials[] = {0.0f,
                                  -0.0f,
                                  1e-40f,
                                  -1e-40f,
                                  3.4e38f,
                                  -3.4e38f,
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN(),
                                  float_of(0x3f808000)};
        for (std::size_t i = 0; i < n && i < std::size(specials); ++i) X[(i * 7919) % n] = specials[i];
        std::vector<bf16> want(n);
        for (std::size_t i = 0; i < n; ++i) want[i] = to_bf16(X[i]);
        for_each_backend([&](Backend& be) {
            auto dX = upload(be, X);
            DeviceBuffer<bf16> dH(be.memory(), n);
            DeviceBuffer<float> dY(be.memory(), n);
            be.convert(n, dX.data(), dH.data());
            be.convert(n, dH.data(), dY.data());
            const std::vector<bf16> got = dH.to_vector();
            const std::vector<float> back = dY.to_vector();
            std::size_t bad = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const bool nan = std::isnan(X[i]);
                if (nan ? !std::isnan(to_float(got[i])) : got[i].bits != want[i].bits) ++bad;
                if (bits_of(back[i]) != static_cast<std::uint32_t>(got[i].bits) << 16) ++bad;
            }
            BOOST_CHECK_MESSAGE(bad == 0, "convert n=" << n << ": " << bad << " elements differ from to_bf16/to_float");
        });
    }
}

// The fused bf16 copy: W16 == to_bf16(W) after each step, bitwise, and W itself is the same as
// without the copy (the copy is an extra store, not a change of the update).
BOOST_AUTO_TEST_CASE(optimizer_steps_refresh_the_bf16_weight_copy)
{
    const std::size_t n = 1031;
    const auto W0 = random_floats(n, 95), G = random_floats(n, 96);
    for_each_backend([&](Backend& be) {
        for (const bool adam : {false, true}) {
            auto dW = upload(be, W0), dW2 = upload(be, W0), dG = upload(be, G);
            DeviceBuffer<float> dM(be.memory(), std::vector<float>(n, 0.0f)),
                dV(be.memory(), std::vector<float>(n, 0.0f));
            DeviceBuffer<float> dM2(be.memory(), std::vector<float>(n, 0.0f)),
                dV2(be.memory(), std::vector<float>(n, 0.0f));
            DeviceBuffer<bf16> dH(be.memory(), n);
            if (adam) {
                be.adam_update(n, AdamStep{}, dW.data(), dG.data(), dM.data(), dV.data(), dH.data());
                be.adam_update(n, AdamStep{}, dW2.data(), dG.data(), dM2.data(), dV2.data());
            } else {
                be.sgd_update(n, SgdStep{0.1f, 0.9f, 0.0f}, dW.data(), dG.data(), dM.data(), dH.data());
                be.sgd_update(n, SgdStep{0.1f, 0.9f, 0.0f}, dW2.data(), dG.data(), dM2.data());
            }
            const std::vector<float> W = dW.to_vector(), W2 = dW2.to_vector();
            const std::vector<bf16> H = dH.to_vector();
            std::size_t bad = 0;
            for (std::size_t i = 0; i < n; ++i)
                if (H[i].bits != to_bf16(W[i]).bits || bits_of(W[i]) != bits_of(W2[i])) ++bad;
            BOOST_CHECK_MESSAGE(bad == 0,
                                (adam ? "adam" : "sgd") << ": " << bad << " elements of the bf16 copy differ");
        }
    });
}

// The optimizers reading a bf16 gradient (the sum of --grad-dtype bf16) step exactly as on the
// same values widened to float, and grad_scale (clipping's factor) exactly as on a gradient
// scaled beforehand: bitwise, on every backend, three steps with momentum and weight decay.
BOOST_AUTO_TEST_CASE(optimizer_steps_read_bf16_gradients_and_grad_scale)
{
    const std::size_t n = 1031;
    const auto W0 = random_floats(n, 97), G = random_floats(n, 98);
    const float clip = 0.37f;
    std::vector<bf16> H(n);
    std::vector<float> widened(n), scaled(n);
    for (std::size_t i = 0; i < n; ++i) {
        H[i] = to_bf16(G[i]);
        widened[i] = to_float(H[i]);
        scaled[i] = widened[i] * clip;
    }
    for_each_backend([&](Backend& be) {
        for (const bool adam : {false, true}) {
            // run(G, scale): W after three steps from W0
            auto run = [&](auto dG, float scale) {
                auto dW = upload(be, W0);
                DeviceBuffer<float> dM(be.memory(), std::vector<float>(n, 0.0f)),
                    dV(be.memory(), std::vector<float>(n, 0.0f));
                for (long long t = 1; t <= 3; ++t) {
                    if (adam) {
                        AdamStep s;
                        s.weight_decay = 0.01f;
                        s.t = t;
                        s.grad_scale = scale;
                        be.adam_update(n, s, dW.data(), dG, dM.data(), dV.data());
                    } else {
                        SgdStep s{0.1f, 0.9f, 0.01f};
                        s.grad_scale = scale;
                        be.sgd_update(n, s, dW.data(), dG, dM.data());
                    }
                }
                return dW.to_vector();
            };
            auto dH = upload(be, H);
            auto dWide = upload(be, widened), dScaled = upload(be, scaled);
            const auto from_bf16 = run(static_cast<const bf16*>(dH.data()), clip);
            const auto from_float = run(static_cast<const float*>(dWide.data()), clip);
            const auto prescaled = run(static_cast<const float*>(dScaled.data()), 1.0f);
            std::size_t bad16 = 0, bad_scale = 0;
            for (std::size_t i = 0; i < n; ++i) {
                bad16 += bits_of(from_bf16[i]) != bits_of(from_float[i]);
                bad_scale += bits_of(from_float[i]) != bits_of(prescaled[i]);
            }
            BOOST_CHECK_MESSAGE(bad16 == 0,
                                (adam ? "adam" : "sgd")
                                    << ": bf16 G differs from its widened floats at " << bad16 << " elements");
            BOOST_CHECK_MESSAGE(bad_scale == 0,
                                (adam ? "adam" : "sgd")
                                    << ": grad_scale differs from a prescaled G at " << bad_scale << " elements");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Argument validation: checked once in KernelBackend, so every backend gives the same message.

BOOST_AUTO_TEST_CASE(bad_arguments_throw_clear_errors)
{
    std::vector<Backend*> all{&ref()};
    for (auto& b : tested()) all.push_back(b.get());
    for (Backend* b : all) {
        BOOST_TEST_CONTEXT("backend " << b->name())
        {
            DeviceBuffer<float> x(b->memory(), 64), y(b->memory(), 64), z(b->memory(), 64), w(b->memory(), 64);
            DeviceBuffer<std::int32_t> lab(b->memory(), 8);
            DeviceBuffer<std::uint8_t> bytes(b->memory(), 64);
            float* X = x.data();
            float* Y = y.data();

            check_throws([&] { b->gemm(Gemm{false, false, 0, 4, 4}, X, Y, z.data()); }, "gemm: m = 0, must be >= 1");
            check_throws([&] { b->gemm(Gemm{false, false, 4, 4, -3}, X, Y, z.data()); }, "gemm: k = -3, must be >= 1");
            check_throws([&] { b->gemm(Gemm{true, false, 4, 0, 4}, X, Y, z.data()); }, "gemm: n = 0, must be >= 1");
            check_throws([&] { b->gemm(Gemm{false, false, 4, 4, 4}, nullptr, Y, z.data()); }, "gemm: A is null");
            check_throws([&] { b->gemm(Gemm{false, true, 4, 4, 4}, X, nullptr, z.data()); }, "gemm: B is null");
            float* no_C = nullptr;
            check_throws([&] { b->gemm(Gemm{false, false, 4, 4, 4}, X, Y, no_C); }, "gemm: C is null");
            DeviceBuffer<bf16> h16(b->memory(), 64);
            Gemm accumulate{false, false, 4, 4, 4};
            accumulate.beta = 1.0f; // would read a bf16 C
            check_throws([&] { b->gemm(accumulate, X, Y, h16.data()); },
                         "gemm: beta = 1.000000 with a bf16 output C: only beta 0 writes bf16");
            Gemm backward{false, false, 4, 4, 4};
            backward.act = Act::relu;
            backward.act_backward = true;
            check_throws([&] { b->gemm(backward, X, Y, z.data()); }, "gemm (activation backward): pre is null");
            check_throws([&] { b->gemm(backward, X, Y, z.data(), Y, w.data()); },
                         "gemm (activation backward): bias must be null");

            check_throws([&] { b->col_sum(0, 4, X, Y); }, "col_sum: rows = 0, must be >= 1");
            check_throws([&] { b->col_sum(4, -3, X, Y); }, "col_sum: cols = -3, must be >= 1");
            check_throws([&] { b->col_sum(4, 4, nullptr, Y); }, "col_sum: X is null");
            check_throws([&] { b->col_sum(4, 4, X, no_C); }, "col_sum: out is null");

            check_throws([&] { b->softmax_xent(0, 10, X, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: batch = 0, must be >= 1");
            check_throws([&] { b->softmax_xent(4, -2, X, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: classes = -2, must be >= 1");
            check_throws([&] { b->softmax_xent(4, 8, nullptr, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: logits is null");
            check_throws([&] { b->softmax_xent(4, 8, X, nullptr, 1.0f, nullptr); }, "softmax_xent: labels is null");

            check_throws([&] { b->activation_backward(Act::relu, 8, nullptr, X, Y); },
                         "activation_backward: Z is null");
            check_throws([&] { b->activation_backward(Act::relu, 8, X, nullptr, Y); },
                         "activation_backward: dY is null");
            check_throws([&] { b->activation_backward(Act::relu, 8, X, Y, nullptr); },
                         "activation_backward: dX is null");
            check_throws([&] { b->normalize_u8(8, nullptr, X, 1.0f, 0.0f); }, "normalize_u8: X is null");
            check_throws([&] { b->normalize_u8(8, bytes.data(), nullptr, 1.0f, 0.0f); }, "normalize_u8: Y is null");
            check_throws([&] { b->fill(8, no_C, 1.0f); }, "fill: X is null");
            const float* no_floats = nullptr;
            const bf16* no_bf16 = nullptr;
            check_throws([&] { b->sum_squares(8, no_floats); }, "sum_squares: X is null");
            check_throws([&] { b->sum_squares(8, no_bf16); }, "sum_squares: X is null");

            check_throws([&] { b->sgd_update(8, SgdStep{}, nullptr, X, Y); }, "sgd_update: W is null");
            check_throws([&] { b->sgd_update(8, SgdStep{}, X, no_floats, Y); }, "sgd_update: G is null");
            check_throws([&] { b->sgd_update(8, SgdStep{}, X, no_bf16, Y); }, "sgd_update: G is null");
            check_throws([&] { b->adam_update(8, AdamStep{}, X, no_bf16, Y, z.data()); }, "adam_update: G is null");
            check_throws([&] { b->sgd_update(8, SgdStep{}, X, Y, nullptr); }, "sgd_update: M is null");
            AdamStep s0;
            s0.t = 0;
            check_throws([&] { b->adam_update(8, s0, X, Y, z.data(), w.data()); }, "adam_update: t = 0, must be >= 1");
            check_throws([&] { b->adam_update(8, AdamStep{}, X, Y, z.data(), nullptr); }, "adam_update: V is null");

            // n is a std::size_t (no negative length): n = 0 is an empty vector, a no-op even
            // with null pointers, and its sum of squares is 0.
            BOOST_CHECK_NO_THROW(b->fill(0, no_C, 1.0f));
            BOOST_CHECK_NO_THROW(b->activation_backward(Act::gelu, 0, nullptr, nullptr, nullptr));
            BOOST_CHECK_EQUAL(b->sum_squares(0, no_floats), 0.0);
        }
    }
    BOOST_CHECK_EXCEPTION(make_backend("nope"), Error, [](const Error& e) {
        return std::string(e.what()).find("unknown backend 'nope'") != std::string::npos;
    });
}

// ---------------------------------------------------------------------------------------------

int main(int argc, char* argv[])
{
    bool gpu_only = false, info_only = false; // info_only: Boost options that list or explain
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && std::strcmp(argv[i], "--gpu-only") == 0) {
            gpu_only = true;
            continue;
        }
        for (const char* opt : {"--help", "-?", "--list_content", "--list_labels", "--version"})
            if (i > 0 && std::strncmp(argv[i], opt, std::strlen(opt)) == 0) info_only = true;
        args.push_back(argv[i]);
    }
    if (!info_only) {
        std::string skipped; // why each built backend is not under test
        for (const auto& name : available_backends()) {
            if (name == "ref") continue;
            std::string why;
            try {
                // A backend that cannot run here says why (cuda without a device; omp under
                // OMP_TARGET_OFFLOAD=MANDATORY without an offload device), starting no kernel.
                auto be = make_backend(name);
                if (gpu_only && !be->on_gpu())
                    why = "runs on " + be->device() + ", not a GPU";
                else
                    tested().push_back(std::move(be));
            } catch (const Error& e) {
                why = e.what();
            }
            if (!why.empty()) skipped += (skipped.empty() ? "" : "; ") + name + ": " + why;
        }
        if (tested().empty() && gpu_only) {
            std::cout << "no GPU: skipped (" << skipped << ")" << std::endl;
            return 77; // ctest: SKIP_RETURN_CODE
        }
        if (!skipped.empty()) std::cout << "test_kernels: not tested: " << skipped << std::endl;
        if (tested().empty()) {
            std::cout << "test_kernels: no backend to test" << std::endl;
            return 1;
        }
        for (const auto& be : tested())
            std::cout << "test_kernels: backend " << be->name() << " on " << be->device() << std::endl;
    }
    return boost::unit_test::unit_test_main(&init_unit_test, static_cast<int>(args.size()), args.data());
}
