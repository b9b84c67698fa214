// GPU kernels against the sequential reference: the cuda backend (when built and a CUDA device
// is visible) and the omp backend (when OpenMP has an offload device), every kernel on random
// data with awkward sizes (1, 7, 33, 127, > 1000, and a GEMM big enough for the large tiles).
// Run with OMP_TARGET_OFFLOAD=MANDATORY (set by ctest), so an omp kernel can never quietly run
// on the host. Without any GPU the program prints "no GPU: skipped" and exits 77, which ctest
// reports as skipped (SKIP_RETURN_CODE); --help and --list_content still work without a GPU.
#define BOOST_TEST_MODULE gpu
#define BOOST_TEST_NO_MAIN
#include "support.hpp"

#include "core/memory.hpp"
#ifdef OMPML_WITH_CUDA
#include "backend/backend_cuda.hpp"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>

using namespace ompml;
using namespace ompml::test;

namespace {

std::vector<std::string>& gpu_backends()
{
    static std::vector<std::string> names;
    return names;
}

// Runs body(backend) for each GPU backend, naming it in every failure message.
template <class F>
void for_each_gpu_backend(F&& body)
{
    for (const auto& name : gpu_backends()) {
        BOOST_TEST_CONTEXT("backend " << name)
        {
            auto be = make_backend(name);
            body(*be);
        }
    }
}

// Tolerance for a float sum of n terms of size <= 1 against a double reference: a float running
// sum whose partial sums grow like sqrt(n) picks up about u * n / 3 of rounding error
// (u = 6e-8); 2e-7 * n is ~10x that, still far below any indexing or missed-term error (>= 1e-2).
double sum_atol(long n) { return 1e-6 + 2e-7 * static_cast<double>(n); }

std::vector<std::int32_t> random_labels(int B, int C, std::uint64_t stream)
{
    const Rng rng(99, stream);
    std::vector<std::int32_t> y(B);
    for (int b = 0; b < B; ++b) y[b] = static_cast<std::int32_t>(rng.below(b, static_cast<std::uint32_t>(C)));
    return y;
}

const Act kActs[] = {Act::identity, Act::relu, Act::tanh, Act::gelu};
const std::size_t kSizes[] = {1, 7, 33, 127, 1031, 100003};

} // namespace

BOOST_AUTO_TEST_CASE(gemm_all_transposes_and_epilogues)
{
    auto ref = make_backend("ref");
    struct Shape {
        int m, n, k;
    };
    // 1x1x1; odd sizes around the 64/128 tile edges; a long K; 1536^2 has 144 tiles of 128x128,
    // at least kGemmLargeTiles, so the large-tile kernels are covered.
    const Shape shapes[] = {{1, 1, 1}, {7, 33, 5}, {33, 7, 127}, {127, 1, 33}, {65, 129, 1500}, {1031, 257, 70},
                            {1536, 1536, 40}};
    int variant = 0;
    for (const Shape s : shapes)
        for (int t = 0; t < 4; ++t) {
            ++variant;
            Gemm g;
            g.trans_a = (t & 1) != 0;
            g.trans_b = (t & 2) != 0;
            g.m = s.m, g.n = s.n, g.k = s.k;
            g.alpha = variant % 2 ? 1.0f : 0.75f;
            g.beta = variant % 3 == 0 ? 0.5f : 0.0f;
            g.act = kActs[variant % 4];
            const bool with_bias = variant % 2 == 0, with_pre = variant % 4 != 1;
            const auto A = random_floats(static_cast<std::size_t>(s.m) * s.k, 10 + variant);
            const auto B = random_floats(static_cast<std::size_t>(s.k) * s.n, 20 + variant);
            const auto C0 = random_floats(static_cast<std::size_t>(s.m) * s.n, 30 + variant);
            const auto bias = random_floats(s.n, 40 + variant);
            auto Cref = C0;
            std::vector<float> pre_ref(C0.size());
            ref->gemm(g, A.data(), B.data(), Cref.data(), with_bias ? bias.data() : nullptr,
                      with_pre ? pre_ref.data() : nullptr);
            for_each_gpu_backend([&](Backend& be) {
                BOOST_TEST_CONTEXT("gemm m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << g.trans_a
                                             << " tb=" << g.trans_b << " beta=" << g.beta
                                             << " act=" << static_cast<int>(g.act) << " bias=" << with_bias)
                {
                    auto dA = upload(be, A), dB = upload(be, B), dC = upload(be, C0), dbias = upload(be, bias);
                    DeviceBuffer<float> dpre(be.memory(), C0.size());
                    be.gemm(g, dA.data(), dB.data(), dC.data(), with_bias ? dbias.data() : nullptr,
                            with_pre ? dpre.data() : nullptr);
                    // sum of k products in float vs double, then a float epilogue (tanh/gelu
                    // within a few ulp of the host's): rtol 1e-5
                    check_close(dC.to_vector(), Cref, sum_atol(s.k), 1e-5, "gemm C");
                    if (with_pre) check_close(dpre.to_vector(), pre_ref, sum_atol(s.k), 1e-5, "gemm pre");
                }
            });
        }
}

BOOST_AUTO_TEST_CASE(activation_backward_matches_reference)
{
    auto ref = make_backend("ref");
    for (const std::size_t n : kSizes)
        for (const Act act : kActs) {
            const auto Z = random_floats(n, 100 + n, -3.0f, 3.0f), dY = random_floats(n, 200 + n);
            std::vector<float> dXref(n);
            ref->activation_backward(act, n, Z.data(), dY.data(), dXref.data());
            for_each_gpu_backend([&](Backend& be) {
                BOOST_TEST_CONTEXT("activation_backward n=" << n << " act=" << static_cast<int>(act))
                {
                    auto dZ = upload(be, Z), ddY = upload(be, dY);
                    be.activation_backward(act, n, dZ.data(), ddY.data(), ddY.data()); // in place, dX = dY
                    // one float derivative (device tanhf within 2 ulp of the host's) times dY
                    check_close(ddY.to_vector(), dXref, 1e-6, 1e-5, "activation_backward");
                }
            });
        }
}

BOOST_AUTO_TEST_CASE(reductions_match_reference)
{
    auto ref = make_backend("ref");
    const std::pair<int, int> shapes[] = {{1, 1}, {7, 33}, {127, 7}, {33, 127}, {1031, 65}, {3, 2049}, {4099, 10}};
    for (const auto& [rows, cols] : shapes) {
        const std::size_t n = static_cast<std::size_t>(rows) * cols;
        const auto X = random_floats(n, 300 + n);
        const auto out0 = random_floats(std::max(rows, cols), 400 + n);
        std::vector<float> cs0(out0.begin(), out0.begin() + cols), cs_ref = cs0, cs_ref_beta = cs0;
        ref->col_sum(rows, cols, X.data(), cs_ref.data(), 0.0f);
        ref->col_sum(rows, cols, X.data(), cs_ref_beta.data(), 0.7f);
        for_each_gpu_backend([&](Backend& be) {
            BOOST_TEST_CONTEXT("reductions rows=" << rows << " cols=" << cols)
            {
                auto dX = upload(be, X), dcs = upload(be, cs0), dcs_beta = upload(be, cs0);
                be.col_sum(rows, cols, dX.data(), dcs.data(), 0.0f);
                be.col_sum(rows, cols, dX.data(), dcs_beta.data(), 0.7f);
                check_close(dcs.to_vector(), cs_ref, sum_atol(rows), 1e-6, "col_sum beta=0");
                check_close(dcs_beta.to_vector(), cs_ref_beta, sum_atol(rows), 1e-6, "col_sum beta=0.7");
            }
        });
    }
}

BOOST_AUTO_TEST_CASE(softmax_xent_matches_reference)
{
    auto ref = make_backend("ref");
    const std::pair<int, int> shapes[] = {{1, 1}, {1, 10}, {7, 10}, {127, 33}, {1031, 10}, {33, 1000}, {5000, 7}};
    for (const auto& [B, C] : shapes) {
        const auto logits = random_floats(static_cast<std::size_t>(B) * C, 500 + B + C, -5.0f, 5.0f);
        const auto labels = random_labels(B, C, 600 + B + C);
        const float scale = 1.0f / B;
        std::vector<float> dref(logits.size());
        const XentStats sref = ref->softmax_xent(B, C, logits.data(), labels.data(), scale, dref.data());
        for_each_gpu_backend([&](Backend& be) {
            BOOST_TEST_CONTEXT("softmax_xent B=" << B << " C=" << C)
            {
                auto dlogits = upload(be, logits);
                auto dlabels = upload(be, labels);
                DeviceBuffer<float> dd(be.memory(), logits.size());
                const XentStats s = be.softmax_xent(B, C, dlogits.data(), dlabels.data(), scale, dd.data());
                const XentStats s2 = be.softmax_xent(B, C, dlogits.data(), dlabels.data(), scale, nullptr);
                // per-row loss in float (exp/log within a few ulp, C-term float sum) vs double:
                // ~1e-6 relative per row, summed over B rows
                const double tol = 1e-5 * B + 1e-5 * std::fabs(sref.loss_sum);
                BOOST_CHECK_LE(std::fabs(s.loss_sum - sref.loss_sum), tol);
                BOOST_CHECK_LE(std::fabs(s2.loss_sum - sref.loss_sum), tol);
                // argmax compares the same floats as the reference: exact
                BOOST_CHECK_EQUAL(s.correct, sref.correct);
                BOOST_CHECK_EQUAL(s2.correct, sref.correct);
                // gradients are scale * (p - onehot), p computed in float: relative 1e-5 of scale
                check_close(dd.to_vector(), dref, 1e-5 * scale, 1e-5, "softmax_xent dlogits");
            }
        });
    }
}

BOOST_AUTO_TEST_CASE(normalize_and_vector_kernels_match_reference)
{
    auto ref = make_backend("ref");
    for (const std::size_t n : kSizes) {
        std::vector<std::uint8_t> bytes(n);
        const Rng rng(7, n);
        for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::uint8_t>(rng.below(i, 256));
        const auto X = random_floats(n, 700 + n);
        std::vector<float> norm_ref(n), fill_ref(n), scale_ref = X;
        ref->normalize_u8(n, bytes.data(), norm_ref.data(), 1.0f / 255.0f, -0.5f);
        ref->fill(n, fill_ref.data(), 0.25f);
        ref->scale(n, scale_ref.data(), -1.5f);
        const double ss_ref = ref->sum_squares(n, X.data());
        for_each_gpu_backend([&](Backend& be) {
            BOOST_TEST_CONTEXT("vector kernels n=" << n)
            {
                auto dbytes = upload(be, bytes);
                DeviceBuffer<float> dnorm(be.memory(), n), dfill(be.memory(), n);
                auto dX = upload(be, X), dscale = upload(be, X);
                be.normalize_u8(n, dbytes.data(), dnorm.data(), 1.0f / 255.0f, -0.5f);
                be.fill(n, dfill.data(), 0.25f);
                be.scale(n, dscale.data(), -1.5f);
                const double ss = be.sum_squares(n, dX.data());
                // one multiply-add each; the device may fuse it (one rounding fewer): 1 ulp
                check_close(dnorm.to_vector(), norm_ref, 1e-7, 2e-7, "normalize_u8");
                check_close(dfill.to_vector(), fill_ref, 0.0, 0.0, "fill");   // exact
                check_close(dscale.to_vector(), scale_ref, 0.0, 0.0, "scale"); // one rounding, same on both
                // float squares are exact in double; only the summation order differs
                BOOST_CHECK_LE(std::fabs(ss - ss_ref), 1e-12 * ss_ref);
            }
        });
    }
}

BOOST_AUTO_TEST_CASE(optimizers_match_reference)
{
    auto ref = make_backend("ref");
    SgdStep sgd;
    sgd.lr = 0.05f, sgd.momentum = 0.9f, sgd.weight_decay = 1e-2f;
    for (const std::size_t n : kSizes)
        for (const bool decoupled : {false, true}) {
            const auto W0 = random_floats(n, 900 + n), M0 = random_floats(n, 1000 + n, -0.1f, 0.1f);
            const auto V0 = random_floats(n, 1100 + n, 0.0f, 0.01f);
            std::vector<std::vector<float>> G;
            for (int step = 0; step < 3; ++step) G.push_back(random_floats(n, 1200 + 10 * n + step));
            AdamStep adam;
            adam.weight_decay = 1e-2f;
            adam.decoupled = decoupled;
            // reference: 3 steps of each optimizer
            auto Ws = W0, Ms = M0, Wa = W0, Ma = M0, Va = V0;
            for (int step = 0; step < 3; ++step) {
                ref->sgd_update(n, sgd, Ws.data(), G[step].data(), Ms.data());
                adam.t = 1 + 4 * step; // t = 1, 5, 9: the bias correction changes
                ref->adam_update(n, adam, Wa.data(), G[step].data(), Ma.data(), Va.data());
            }
            for_each_gpu_backend([&](Backend& be) {
                BOOST_TEST_CONTEXT("optimizers n=" << n << " decoupled=" << decoupled)
                {
                    auto dWs = upload(be, W0), dMs = upload(be, M0), dWa = upload(be, W0), dMa = upload(be, M0),
                         dVa = upload(be, V0);
                    for (int step = 0; step < 3; ++step) {
                        auto dG = upload(be, G[step]);
                        be.sgd_update(n, sgd, dWs.data(), dG.data(), dMs.data());
                        adam.t = 1 + 4 * step;
                        be.adam_update(n, adam, dWa.data(), dG.data(), dMa.data(), dVa.data());
                    }
                    // same per-element bodies; the device may fuse multiply-adds (and sqrtf is
                    // correctly rounded on both), so a few ulp over three steps
                    check_close(dWs.to_vector(), Ws, 1e-6, 1e-5, "sgd W");
                    check_close(dMs.to_vector(), Ms, 1e-6, 1e-5, "sgd momentum");
                    check_close(dWa.to_vector(), Wa, 1e-6, 1e-5, "adam W");
                    check_close(dMa.to_vector(), Ma, 1e-6, 1e-5, "adam m");
                    check_close(dVa.to_vector(), Va, 1e-7, 1e-5, "adam v");
                }
            });
        }
}

int main(int argc, char* argv[])
{
    std::string why_cuda = "backend not built";
#ifdef OMPML_WITH_CUDA
    if (cuda_device_count(&why_cuda) > 0) gpu_backends().push_back("cuda");
#endif
    // Asking for the device count starts no target region, so it is safe without a device
    // even under OMP_TARGET_OFFLOAD=MANDATORY.
    std::string why_omp = "OpenMP sees 0 offload devices";
    if (omp_device_count() > 0) gpu_backends().push_back("omp");

    bool info_only = false; // Boost options that list or explain but run no test
    for (int i = 1; i < argc; ++i)
        for (const char* opt : {"--help", "-?", "--list_content", "--list_labels", "--version"})
            if (std::strncmp(argv[i], opt, std::strlen(opt)) == 0) info_only = true;
    if (gpu_backends().empty() && !info_only) {
        std::cout << "no GPU: skipped (cuda: " << why_cuda << "; omp: " << why_omp << ")" << std::endl;
        return 77; // ctest: SKIP_RETURN_CODE
    }
    for (const auto& name : gpu_backends())
        std::cout << "test_gpu: backend " << name << " on " << make_backend(name)->device() << std::endl;
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
