// Every non-gemm kernel of the omp backend against the sequential ref backend, on random data,
// with each dimension taken from {1, 7, 33, 127, >1000} (odd sizes catch tail and chunking
// bugs), plus argument validation (bad sizes, null pointers) with the message it gives.
// Buffers live in each backend's own memory space, so in the offload-check build a kernel
// that touches host memory or forgets a mapping fails here as it would on a GPU.
// gemm has its own suite (test_gemm.cpp); one small case stays here as a smoke test.
#define BOOST_TEST_MODULE kernels
#include "support.hpp"

#include <cstdint>
#include <functional>
#include <memory>

using namespace ompml;
using namespace ompml::test;

namespace {

constexpr int kDims[] = {1, 7, 33, 127, 1031};
constexpr std::size_t kLengths[] = {1, 7, 33, 127, 1031, 100003};

// float32 unit roundoff.
constexpr double kEps = 5.96e-8;

struct Backends {
    std::unique_ptr<Backend> ref = make_backend("ref");
    std::unique_ptr<Backend> omp = make_backend("omp");
};

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
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int32_t>(rng.below(i, static_cast<std::uint32_t>(classes)));
    return v;
}

std::string shape(long long a, long long b = -1)
{
    return "(" + std::to_string(a) + (b >= 0 ? ", " + std::to_string(b) : std::string()) + ")";
}

// Runs f and checks it throws ompml::Error whose message contains `needle`.
void check_throws(const std::function<void()>& f, const std::string& needle)
{
    try {
        f();
        BOOST_ERROR("expected ompml::Error containing '" << needle << "', nothing thrown");
    } catch (const Error& e) {
        const std::string msg = e.what();
        BOOST_CHECK_MESSAGE(msg.find(needle) != std::string::npos,
                            "message '" << msg << "' lacks '" << needle << "'");
    }
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Element-wise kernels

BOOST_AUTO_TEST_CASE(activation_backward_all_activations)
{
    Backends be;
    const Act acts[] = {Act::identity, Act::relu, Act::tanh, Act::gelu};
    for (const Act act : acts) {
        for (const std::size_t n : kLengths) {
            const auto Z = random_floats(n, 10, -4.0f, 4.0f), dY = random_floats(n, 11);
            const std::string what = "activation_backward act=" + std::to_string(static_cast<int>(act)) + " n=" +
                                     std::to_string(n);
            std::vector<float> dXref(n);
            be.ref->activation_backward(act, n, Z.data(), dY.data(), dXref.data());

            // tanh comes from different math libraries (host libm, device libm): a few ulp of
            // the derivative; identity/relu are exact. atol covers derivatives near 0.
            const double atol = 1e-6, rtol = 1e-5;
            auto dZ = upload(*be.omp, Z), ddY = upload(*be.omp, dY);
            DeviceBuffer<float> ddX(be.omp->memory(), n);
            be.omp->activation_backward(act, n, dZ.data(), ddY.data(), ddX.data());
            check_close(ddX.to_vector(), dXref, atol, rtol, what);

            // In place (dX aliases dY), the way backward passes call it.
            be.omp->activation_backward(act, n, dZ.data(), ddY.data(), ddY.data());
            check_close(ddY.to_vector(), dXref, atol, rtol, what + " in place");
        }
    }
}

// relu and NaN/Inf, against PyTorch 1.13 (/usr/bin/python3, torch on the CPU):
//   x = torch.tensor([nan, inf, -inf, 0., -0., 1., -1.], requires_grad=True)
//   torch.relu(x)                      -> [nan, inf, 0, 0, -0, 1, 0]
//   torch.relu(x).backward(g)          -> x.grad = g where relu(x) > 0 or is nan, else 0:
//   g = [2, nan, 5, nan, 3, nan, nan]  -> [2, nan, 0, 0, 0, nan, 0]
// (ompml gives +0 for relu(-0); PyTorch's -0 compares equal and changes no later value.)
BOOST_AUTO_TEST_CASE(relu_propagates_nan_as_pytorch)
{
    const float nan = std::nanf(""), inf = INFINITY;
    const std::vector<float> z{nan, inf, -inf, 0.0f, -0.0f, 1.0f, -1.0f};
    const std::vector<float> g{2.0f, nan, 5.0f, nan, 3.0f, nan, nan};
    const std::vector<float> fwd{nan, inf, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
    const std::vector<float> bwd{2.0f, nan, 0.0f, 0.0f, 0.0f, nan, 0.0f};
    // Equal as values, NaN where PyTorch has NaN (check_close would count NaN as a mismatch).
    const auto same = [](const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
        BOOST_REQUIRE_EQUAL(got.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i)
            BOOST_CHECK_MESSAGE(std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i],
                                what << "[" << i << "]: got " << got[i] << ", PyTorch " << want[i]);
    };
    std::vector<float> host(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) host[i] = act_forward(Act::relu, z[i]);
    same(host, fwd, "act_forward (shared body)");

    Backends be;
    // Forward through the gemm epilogue, the only place the backends apply relu: C = relu(A * I)
    // with A = z as a column, so every z reaches relu unchanged (z * 1 + 0 is exact, NaN and
    // Inf included).
    const int M = static_cast<int>(z.size());
    const Gemm gm{false, true, M, 1, 1, 1.0f, 0.0f, Act::relu};
    const std::vector<float> one{1.0f};
    std::vector<float> Cref(M);
    be.ref->gemm(gm, z.data(), one.data(), Cref.data(), nullptr);
    same(Cref, fwd, "ref gemm + relu");
    auto dA = upload(*be.omp, z), dB = upload(*be.omp, one);
    DeviceBuffer<float> dC(be.omp->memory(), M);
    be.omp->gemm(gm, dA.data(), dB.data(), dC.data(), nullptr);
    same(dC.to_vector(), fwd, "omp gemm + relu");

    std::vector<float> dXref(z.size());
    be.ref->activation_backward(Act::relu, z.size(), z.data(), g.data(), dXref.data());
    same(dXref, bwd, "ref relu backward");
    auto dZ = upload(*be.omp, z), dG = upload(*be.omp, g);
    DeviceBuffer<float> dX(be.omp->memory(), z.size());
    be.omp->activation_backward(Act::relu, z.size(), dZ.data(), dG.data(), dX.data());
    same(dX.to_vector(), bwd, "omp relu backward");
    be.omp->activation_backward(Act::relu, z.size(), dZ.data(), dG.data(), dG.data());
    same(dG.to_vector(), bwd, "omp relu backward in place");
}

BOOST_AUTO_TEST_CASE(normalize_u8_matches_reference)
{
    Backends be;
    for (const std::size_t n : kLengths) {
        const auto X = random_bytes(n, 20);
        std::vector<float> Yref(n);
        be.ref->normalize_u8(n, X.data(), Yref.data(), 1.0f / 255.0f, -0.5f);
        auto dX = upload(*be.omp, X);
        DeviceBuffer<float> dY(be.omp->memory(), n);
        be.omp->normalize_u8(n, dX.data(), dY.data(), 1.0f / 255.0f, -0.5f);
        // One multiply-add per element: at most a rounding apart (fused or not).
        check_close(dY.to_vector(), Yref, 1e-7, 2 * kEps, "normalize_u8 n=" + std::to_string(n));
    }
}

BOOST_AUTO_TEST_CASE(fill_and_scale_match_reference)
{
    Backends be;
    for (const std::size_t n : kLengths) {
        const auto X = random_floats(n, 30);
        const std::string sz = " n=" + std::to_string(n);

        std::vector<float> ref(n);
        be.ref->fill(n, ref.data(), 0.375f);
        DeviceBuffer<float> d(be.omp->memory(), n);
        be.omp->fill(n, d.data(), 0.375f);
        check_close(d.to_vector(), ref, 0.0, 0.0, "fill" + sz); // a store: exact

        ref = X;
        be.ref->scale(n, ref.data(), -1.7f);
        d.upload(X);
        be.omp->scale(n, d.data(), -1.7f);
        check_close(d.to_vector(), ref, 0.0, 0.0, "scale" + sz); // one rounded multiply: exact
    }
}

BOOST_AUTO_TEST_CASE(sum_squares_matches_reference)
{
    Backends be;
    for (const std::size_t n : kLengths) {
        const auto X = random_floats(n, 40, -3.0f, 3.0f);
        const double ref = be.ref->sum_squares(n, X.data());
        auto dX = upload(*be.omp, X);
        const double got = be.omp->sum_squares(n, dX.data());
        // Positive terms summed in double, in another order: relative error below n * 2^-53;
        // 1e-11 covers n = 1e5 with margin.
        BOOST_CHECK_MESSAGE(std::fabs(got - ref) <= 1e-11 * ref,
                            "sum_squares n=" << n << ": got " << got << ", ref " << ref);
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions over (rows, cols)

BOOST_AUTO_TEST_CASE(col_sum_with_and_without_beta)
{
    Backends be;
    for (const int rows : kDims)
        for (const int cols : kDims)
            for (const float beta : {0.0f, 0.5f}) {
                const auto X = random_floats(static_cast<std::size_t>(rows) * cols, 50);
                const auto out0 = random_floats(cols, 51);
                auto ref = out0;
                be.ref->col_sum(rows, cols, X.data(), ref.data(), beta);
                auto dX = upload(*be.omp, X), dout = upload(*be.omp, out0);
                be.omp->col_sum(rows, cols, dX.data(), dout.data(), beta);
                // omp sums `rows` floats in float, ref in double: worst-case error about
                // rows * eps * max|x| (|x| <= 1); the factor 4 leaves room for beta * out.
                check_close(dout.to_vector(), ref, 4 * kEps * rows, 4 * kEps,
                            "col_sum " + shape(rows, cols) + " beta=" + std::to_string(beta));
            }
}

// ---------------------------------------------------------------------------------------------
// Softmax + cross-entropy

BOOST_AUTO_TEST_CASE(softmax_xent_with_and_without_gradient)
{
    Backends be;
    for (const int B : kDims)
        for (const int C : kDims) {
            const auto logits = random_floats(static_cast<std::size_t>(B) * C, 70, -6.0f, 6.0f);
            const auto labels = random_labels(B, C, 71);
            const float scale = 1.0f / static_cast<float>(B);
            const std::string what = "softmax_xent " + shape(B, C);

            std::vector<float> dref(static_cast<std::size_t>(B) * C);
            const XentStats ref = be.ref->softmax_xent(B, C, logits.data(), labels.data(), scale, dref.data());

            auto dlogits = upload(*be.omp, logits);
            auto dlabels = upload(*be.omp, labels);
            DeviceBuffer<float> dgrad(be.omp->memory(), dref.size());
            for (const bool with_grad : {false, true}) {
                const XentStats got = be.omp->softmax_xent(B, C, dlogits.data(), dlabels.data(), scale,
                                                           with_grad ? dgrad.data() : nullptr);
                // Per row the omp kernel works in float, ref in double: log of a sum of C
                // exponentials is off by about C * eps; rows add up in double.
                const double tol = 1e-6 * B + 4 * kEps * C * std::fabs(ref.loss_sum);
                BOOST_CHECK_MESSAGE(std::fabs(got.loss_sum - ref.loss_sum) <= tol,
                                    what << " grad=" << with_grad << ": loss " << got.loss_sum << ", ref "
                                         << ref.loss_sum);
                // The argmax is the same float comparisons on both sides: exact.
                BOOST_CHECK_MESSAGE(got.correct == ref.correct, what << " grad=" << with_grad << ": correct "
                                                                     << got.correct << ", ref " << ref.correct);
            }
            // Gradient scale * (p - onehot): p in float has relative error about C * eps; atol
            // relative to scale, the size of the largest entry.
            check_close(dgrad.to_vector(), dref, 4 * kEps * scale, 4 * kEps * C, what + " dlogits");
        }
}

// ---------------------------------------------------------------------------------------------
// Optimizers

BOOST_AUTO_TEST_CASE(sgd_with_and_without_momentum_and_decay)
{
    Backends be;
    const SgdStep steps[] = {{0.1f, 0.0f, 0.0f}, {0.1f, 0.9f, 0.0f}, {0.05f, 0.0f, 1e-2f}, {0.05f, 0.9f, 1e-2f}};
    for (const SgdStep& s : steps)
        for (const std::size_t n : kLengths) {
            auto W = random_floats(n, 80), M = random_floats(n, 82, -0.1f, 0.1f);
            const auto G = random_floats(n, 81);
            auto dW = upload(*be.omp, W), dG = upload(*be.omp, G), dM = upload(*be.omp, M);
            const std::string what = "sgd momentum=" + std::to_string(s.momentum) +
                                     " wd=" + std::to_string(s.weight_decay) + " n=" + std::to_string(n);
            for (int step = 0; step < 3; ++step) { // three steps: the momentum buffer carries over
                be.ref->sgd_update(n, s, W.data(), G.data(), M.data());
                be.omp->sgd_update(n, s, dW.data(), dG.data(), dM.data());
            }
            // The same inline body on both sides; contraction into FMA may differ by a rounding
            // per operation, three steps of a few operations each.
            check_close(dW.to_vector(), W, 1e-6, 16 * kEps, what + " W");
            check_close(dM.to_vector(), M, 1e-6, 16 * kEps, what + " M");
        }
}

BOOST_AUTO_TEST_CASE(adam_and_adamw_over_several_steps)
{
    Backends be;
    for (const bool decoupled : {false, true})
        for (const float wd : {0.0f, 0.01f})
            for (const std::size_t n : {std::size_t{1}, std::size_t{33}, std::size_t{1031}, std::size_t{100003}}) {
                auto W = random_floats(n, 90), M = std::vector<float>(n, 0.0f), V = std::vector<float>(n, 0.0f);
                auto dW = upload(*be.omp, W), dM = upload(*be.omp, M), dV = upload(*be.omp, V);
                const std::string what = std::string(decoupled ? "adamw" : "adam") +
                                         " wd=" + std::to_string(wd) + " n=" + std::to_string(n);
                // Steps 1, 2, 3 (bias correction large) and then jumps to 10 and 1000 (nearly
                // none); a new gradient each step.
                for (const long long t : {1LL, 2LL, 3LL, 10LL, 1000LL}) {
                    const auto G = random_floats(n, 91 + static_cast<std::uint64_t>(t));
                    auto dG = upload(*be.omp, G);
                    AdamStep s;
                    s.lr = 1e-2f;
                    s.weight_decay = wd;
                    s.decoupled = decoupled;
                    s.t = t;
                    be.ref->adam_update(n, s, W.data(), G.data(), M.data(), V.data());
                    be.omp->adam_update(n, s, dW.data(), dG.data(), dM.data(), dV.data());
                    // Same body; sqrt and divide are correctly rounded on host and nvptx, so
                    // only FMA contraction differs: a few roundings per step, and an update of
                    // size lr adds an absolute error of about lr * eps.
                    const std::string at = what + " t=" + std::to_string(t);
                    check_close(dW.to_vector(), W, 1e-7, 16 * kEps, at + " W");
                    check_close(dM.to_vector(), M, 1e-7, 16 * kEps, at + " M");
                    check_close(dV.to_vector(), V, 1e-9, 16 * kEps, at + " V");
                }
            }
}

// ---------------------------------------------------------------------------------------------
// Argument validation: checked once in KernelBackend, so every backend gives the same message.

BOOST_AUTO_TEST_CASE(bad_arguments_throw_clear_errors)
{
    Backends be;
    for (Backend* b : {be.ref.get(), be.omp.get()}) {
        BOOST_TEST_CONTEXT("backend " << b->name())
        {
            DeviceBuffer<float> x(b->memory(), 64), y(b->memory(), 64), z(b->memory(), 64), w(b->memory(), 64);
            DeviceBuffer<std::int32_t> lab(b->memory(), 8);
            DeviceBuffer<std::uint8_t> bytes(b->memory(), 64);
            float* X = x.data();
            float* Y = y.data();

            check_throws([&] { b->col_sum(0, 4, X, Y, 0.0f); }, "col_sum: rows = 0, must be >= 1");
            check_throws([&] { b->col_sum(4, -3, X, Y, 0.0f); }, "col_sum: cols = -3, must be >= 1");
            check_throws([&] { b->col_sum(4, 4, nullptr, Y, 0.0f); }, "col_sum: X is null");
            check_throws([&] { b->col_sum(4, 4, X, nullptr, 0.0f); }, "col_sum: out is null");

            check_throws([&] { b->softmax_xent(0, 10, X, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: batch = 0, must be >= 1");
            check_throws([&] { b->softmax_xent(4, -2, X, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: classes = -2, must be >= 1");
            check_throws([&] { b->softmax_xent(4, 8, nullptr, lab.data(), 1.0f, nullptr); },
                         "softmax_xent: logits is null");
            check_throws([&] { b->softmax_xent(4, 8, X, nullptr, 1.0f, nullptr); }, "softmax_xent: labels is null");

            check_throws([&] { b->activation_backward(Act::relu, 8, nullptr, X, Y); }, "activation_backward: Z is null");
            check_throws([&] { b->activation_backward(Act::relu, 8, X, nullptr, Y); }, "activation_backward: dY is null");
            check_throws([&] { b->activation_backward(Act::relu, 8, X, Y, nullptr); }, "activation_backward: dX is null");
            check_throws([&] { b->normalize_u8(8, nullptr, X, 1.0f, 0.0f); }, "normalize_u8: X is null");
            check_throws([&] { b->normalize_u8(8, bytes.data(), nullptr, 1.0f, 0.0f); }, "normalize_u8: Y is null");
            check_throws([&] { b->fill(8, nullptr, 1.0f); }, "fill: X is null");
            check_throws([&] { b->scale(8, nullptr, 1.0f); }, "scale: X is null");
            check_throws([&] { b->sum_squares(8, nullptr); }, "sum_squares: X is null");

            check_throws([&] { b->sgd_update(8, SgdStep{}, nullptr, X, Y); }, "sgd_update: W is null");
            check_throws([&] { b->sgd_update(8, SgdStep{}, X, nullptr, Y); }, "sgd_update: G is null");
            check_throws([&] { b->sgd_update(8, SgdStep{}, X, Y, nullptr); }, "sgd_update: M is null");
            AdamStep s0;
            s0.t = 0;
            check_throws([&] { b->adam_update(8, s0, X, Y, z.data(), w.data()); }, "adam_update: t = 0, must be >= 1");
            check_throws([&] { b->adam_update(8, AdamStep{}, X, Y, z.data(), nullptr); }, "adam_update: V is null");

            // n is a std::size_t (no negative length): n = 0 is an empty vector, a no-op even
            // with null pointers, and its sum of squares is 0.
            BOOST_CHECK_NO_THROW(b->fill(0, nullptr, 1.0f));
            BOOST_CHECK_NO_THROW(b->scale(0, nullptr, 1.0f));
            BOOST_CHECK_NO_THROW(b->activation_backward(Act::gelu, 0, nullptr, nullptr, nullptr));
            BOOST_CHECK_EQUAL(b->sum_squares(0, nullptr), 0.0);
        }
    }
    BOOST_CHECK_EXCEPTION(make_backend("nope"), Error, [](const Error& e) {
        return std::string(e.what()).find("unknown backend 'nope'") != std::string::npos;
    });
}

// ---------------------------------------------------------------------------------------------
// gemm smoke test (the full suite is test_gemm.cpp)

BOOST_AUTO_TEST_CASE(gemm_small_matches_reference)
{
    Backends be;
    const int M = 7, N = 33, K = 5;
    const Gemm g{false, true, M, N, K, 1.0f, 0.0f, Act::relu};
    const auto A = random_floats(M * K, 1), B = random_floats(N * K, 2), bias = random_floats(N, 3);
    std::vector<float> Cref(M * N);
    be.ref->gemm(g, A.data(), B.data(), Cref.data(), bias.data());
    auto dA = upload(*be.omp, A), dB = upload(*be.omp, B), dbias = upload(*be.omp, bias);
    DeviceBuffer<float> dC(be.omp->memory(), M * N);
    be.omp->gemm(g, dA.data(), dB.data(), dC.data(), dbias.data());
    // K = 5 products of |x| <= 1 summed in float vs double: a few eps.
    check_close(dC.to_vector(), Cref, 1e-5, 1e-5, "gemm");
}
