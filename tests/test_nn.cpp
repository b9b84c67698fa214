// nn unit tests: finite-difference gradient check of whole MLPs (ref and omp backends), the
// zero-row backward contract, schedules and clipping, and a tiny problem learned to 100%.
#define BOOST_TEST_MODULE nn
#include "support.hpp"

#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/step.hpp"
#include "nn/trainer.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sys/resource.h>

using namespace ompml;
using namespace ompml::test;

namespace {

// Loss (batch mean) of the current parameters on (X, Y).
double mean_loss(Model& m, const float* X, const std::int32_t* Y, int B)
{
    m.forward(X, B, false);
    return m.loss(Y, B).loss_sum / B;
}

// Checks dL/dtheta of every parameter against central differences.
// Tolerance: logits are float32; a rounding error of ~1e-7 relative in the loss (~1) divided by
// 2*eps = 2e-2 gives ~1e-5 (ref, double accumulation) to ~1e-4 (omp, float accumulation), and the
// truncation error eps^2/6 * |L'''| is ~2e-5 for these smooth activations; so atol 3e-4 and
// rtol 1e-2 catch any real mistake (a wrong transpose or a missing term is O(|grad|)).
void gradient_check(const std::string& backend, Act act)
{
    auto be = make_backend(backend);
    const int B = 5;
    MlpConfig cfg;
    cfg.layers = {6, 7, 5, 3};
    cfg.activation = act;
    Mlp<float, float> m(*be, cfg, B);
    m.init_params(42);
    const auto X = upload(*be, random_floats(static_cast<std::size_t>(B) * 6, 1));
    const std::vector<std::int32_t> yh{0, 2, 1, 2, 0};
    const auto Y = upload(*be, yh);

    m.forward(X.data(), B, true);
    m.loss_backward(Y.data(), B, B);
    be->synchronize();
    std::vector<float> grads(m.num_params());
    be->memory().to_host(grads.data(), m.grads(), grads.size() * sizeof(float));
    std::vector<float> p = m.download_params();
    std::vector<float> numeric(p.size());
    const float eps = 1e-2f;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const float keep = p[i];
        p[i] = keep + eps;
        const float hi = p[i];
        m.upload_params(p);
        const double lp = mean_loss(m, X.data(), Y.data(), B);
        p[i] = keep - eps;
        const float lo = p[i];
        m.upload_params(p);
        const double lm = mean_loss(m, X.data(), Y.data(), B);
        p[i] = keep;
        numeric[i] = static_cast<float>((lp - lm) / (static_cast<double>(hi) - lo));
    }
    check_close(grads, numeric, 3e-4, 1e-2, backend + " " + enum_name(act) + " gradient vs finite differences");
}

// Fixed-order in-memory batches: sample i of batch s is row (s*B + i) mod N.
class MemorySource final : public BatchSource {
public:
    MemorySource(const Backend& be, const std::vector<float>& x, const std::vector<std::int32_t>& y, int features,
                 int batch)
        : F_(features), B_(batch), N_(static_cast<int>(y.size())), x_(upload(be, x)), y_(upload(be, y))
    {
    }
    std::int64_t steps_per_epoch() const override { return (N_ + B_ - 1) / B_; }
    std::uint64_t samples() const override { return static_cast<std::uint64_t>(N_); }
    void start_epoch(std::int64_t, std::int64_t first) override { step_ = first; }
    bool next(DeviceBatch& b) override
    {
        if (step_ >= steps_per_epoch()) return false;
        const int r0 = static_cast<int>(step_) * B_;
        b.rows = b.global_rows = std::min(B_, N_ - r0);
        b.x = x_.data() + static_cast<std::size_t>(r0) * F_;
        b.y = y_.data() + r0;
        ++step_;
        return true;
    }

private:
    int F_, B_, N_;
    std::int64_t step_ = 0;
    DeviceBuffer<float> x_;
    DeviceBuffer<std::int32_t> y_;
};

} // namespace

BOOST_AUTO_TEST_CASE(gradient_check_ref)
{
    gradient_check("ref", Act::tanh);
    gradient_check("ref", Act::gelu);
}

BOOST_AUTO_TEST_CASE(gradient_check_omp)
{
    gradient_check("omp", Act::tanh);
    gradient_check("omp", Act::gelu);
}

namespace {

// Logits and gradients of one forward/backward of a 64-48-32-10 model on 32 rows, in the
// number formats make_step picks for `precision` (one rank: fp32 gradients).
struct StepResult {
    std::vector<float> logits, grads;
};
StepResult one_step(const std::string& backend, Precision precision, Act act)
{
    auto be = make_backend(backend);
    const int B = 32;
    TrainConfig cfg;
    cfg.model.layers = {64, 48, 32, 10};
    cfg.model.precision = precision;
    cfg.model.activation = act;
    const std::unique_ptr<Step> step = make_step(*be, cfg, B);
    Model& m = step->model();
    m.init_params(7);
    const auto X = upload(*be, random_floats(static_cast<std::size_t>(B) * 64, 3));
    std::vector<std::int32_t> yh(B);
    for (int i = 0; i < B; ++i) yh[i] = (i * 7) % 10;
    const auto Y = upload(*be, yh);
    const float* logits = m.forward(X.data(), B, true);
    StepResult r;
    r.logits.resize(static_cast<std::size_t>(B) * 10);
    be->memory().to_host(r.logits.data(), logits, r.logits.size() * sizeof(float));
    step->gradient(DeviceBatch{B, B, X.data(), Y.data()}, false);
    be->synchronize();
    r.grads = step->download_gradient();
    return r;
}

double max_abs(const std::vector<float>& v)
{
    double m = 0;
    for (const float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
    return m;
}

} // namespace

// bf16 mixed precision against fp32 on the same model and batch. bf16 keeps 8 significant bits
// (a rounding error <= 2^-9 relative per operand), each gemm input is rounded once, and the sums
// are float, so logits and gradients move by up to ~2% of an element (the three layers' roundings
// compound). Tolerance 1e-2 * max|ref| + 3e-2 * |ref|: this test passes at 4e-3 + 1e-2 and fails
// at 1e-3 + 2e-3, so ~2.5x margin; a wrong operand or transpose is O(max|ref|). The bf16 run must
// also differ from fp32 (else the precision flag did nothing). tanh: with relu, the rounding
// flips a few pre-activations near 0 across the kink, which moves single gradient elements by
// O(1) of themselves (a row joins or leaves a unit's sum): real, but not rounding to bound.
BOOST_AUTO_TEST_CASE(bf16_step_tracks_fp32)
{
    for (const std::string backend : {"ref", "omp"}) {
        BOOST_TEST_CONTEXT("backend " << backend)
        {
            const StepResult f = one_step(backend, Precision::fp32, Act::tanh);
            const StepResult h = one_step(backend, Precision::bf16, Act::tanh);
            check_close(h.logits, f.logits, 1e-2 * max_abs(f.logits), 3e-2, "bf16 logits vs fp32");
            check_close(h.grads, f.grads, 1e-2 * max_abs(f.grads), 3e-2, "bf16 gradients vs fp32");
            BOOST_CHECK_MESSAGE(h.grads != f.grads, "the bf16 gradients are bitwise the fp32 ones");
        }
    }
}

// The omp bf16 step against the ref bf16 step: the same bf16 operands, so only the order of the
// float sums differs (~1e-6 relative), except where that flips the rounding of a bf16 copy of a
// hidden output (one bf16 ulp, 2^-8 relative, of a rare element): 1e-3 * max|ref| + 1e-3 * |ref|.
BOOST_AUTO_TEST_CASE(bf16_step_omp_matches_ref)
{
    const StepResult r = one_step("ref", Precision::bf16, Act::relu), o = one_step("omp", Precision::bf16, Act::relu);
    check_close(o.logits, r.logits, 1e-3 * max_abs(r.logits), 1e-3, "omp bf16 logits vs ref");
    check_close(o.grads, r.grads, 1e-3 * max_abs(r.grads), 1e-3, "omp bf16 gradients vs ref");
}

// A bf16 gradient (--grad-dtype bf16 on several ranks: Mlp<T, bf16>) is, bit for bit, the
// rounding of the fp32 gradient of the same model and batch: the dW gemm rounds its float
// result once as it stores it, the bias sums likewise. For both operand types.
BOOST_AUTO_TEST_CASE(bf16_gradient_is_the_rounded_fp32_gradient)
{
    auto be = make_backend("omp");
    const int B = 16;
    MlpConfig cfg;
    cfg.layers = {40, 33, 10};
    const auto X = upload(*be, random_floats(static_cast<std::size_t>(B) * 40, 5));
    std::vector<std::int32_t> yh(B);
    for (int i = 0; i < B; ++i) yh[i] = (i * 3) % 10;
    const auto Y = upload(*be, yh);
    const auto grads = [&](auto& m) {
        m.init_params(3);
        m.forward(X.data(), B, true);
        m.loss_backward(Y.data(), B, B);
        using G = std::remove_pointer_t<decltype(m.grads())>;
        std::vector<G> g(m.num_params());
        be->memory().to_host(g.data(), m.grads(), g.size() * sizeof(G));
        return g;
    };
    for (const Precision p : {Precision::fp32, Precision::bf16}) {
        cfg.precision = p;
        std::vector<float> g32;
        std::vector<bf16> g16;
        if (p == Precision::fp32) {
            Mlp<float, float> a(*be, cfg, B);
            Mlp<float, bf16> b(*be, cfg, B);
            g32 = grads(a);
            g16 = grads(b);
        } else {
            Mlp<bf16, float> a(*be, cfg, B);
            Mlp<bf16, bf16> b(*be, cfg, B);
            g32 = grads(a);
            g16 = grads(b);
        }
        std::size_t diff = 0;
        for (std::size_t i = 0; i < g32.size(); ++i) diff += g16[i].bits != to_bf16(g32[i]).bits;
        BOOST_TEST(diff == 0u,
                   enum_name(p) << " operands: " << diff << " of " << g32.size()
                                << " bf16 gradient elements are not the rounded fp32 ones");
    }
}

// The model's backward with a BatchTree (--reproducible-ranks 8): each "rank" of P (2, 4, 8; in
// one process, on its own slice of the batch, as the loader slices it) computes its gradient and
// loss as a rank would, and their split-tree sum over ranks is bit for bit the 1-rank gradient
// and loss, for both operand types. A batch of 100 rows: chunks of 12 and 13 rows.
BOOST_AUTO_TEST_CASE(tree_gradients_of_rank_slices_add_up_to_the_one_rank_gradient)
{
    auto be = make_backend("omp");
    const int B = 100, F = 40, N = 8;
    const auto x = random_floats(static_cast<std::size_t>(B) * F, 9);
    std::vector<std::int32_t> y(B);
    for (int i = 0; i < B; ++i) y[i] = (i * 7) % 10;
    for (const Precision p : {Precision::fp32, Precision::bf16}) {
        MlpConfig cfg;
        cfg.layers = {F, 33, 10};
        cfg.precision = p;
        // One "rank" r of P: its rows [B r / P, B (r + 1) / P), its gradient (float) and loss.
        const auto rank_grad = [&](int r, int P, double& loss) {
            TrainConfig tc;
            tc.model = cfg;
            tc.reproducible_ranks = N;
            GradSums one_of_p;
            one_of_p.rank = r;
            one_of_p.ranks = P;
            one_of_p.fp32 = [](float*, std::size_t n) { return std::make_unique<NoSum<float>>(n); };
            const std::unique_ptr<Step> step = make_step(*be, tc, B, Precision::fp32, one_of_p);
            step->model().init_params(4);
            const int lo = B * r / P, hi = B * (r + 1) / P;
            const auto X = upload(*be, std::vector<float>(x.begin() + lo * F, x.begin() + hi * F));
            const auto Y = upload(*be, std::vector<std::int32_t>(y.begin() + lo, y.begin() + hi));
            loss = step->gradient(DeviceBatch{hi - lo, B, X.data(), Y.data()}, false).loss_sum;
            return step->download_gradient();
        };
        double whole_loss = 0;
        const std::vector<float> whole = rank_grad(0, 1, whole_loss);
        for (int P = 2; P <= N; P *= 2) {
            std::vector<std::vector<float>> g(P);
            std::vector<double> loss(P);
            for (int r = 0; r < P; ++r) g[r] = rank_grad(r, P, loss[r]);
            std::size_t diff = 0;
            for (std::size_t i = 0; i < whole.size(); ++i) {
                TreeSum<float> t;
                for (int r = 0; r < P; ++r) t.add(g[r][i]);
                const float v = t.total();
                diff += std::memcmp(&v, &whole[i], sizeof v) != 0;
            }
            TreeSum<double> tl;
            for (int r = 0; r < P; ++r) tl.add(loss[r]);
            BOOST_TEST(diff == 0u, enum_name(p) << ", " << P << " ranks: " << diff << " gradient elements differ");
            BOOST_TEST(tl.total() == whole_loss, enum_name(p) << ", " << P << " ranks: the loss differs");
        }
    }
}

BOOST_AUTO_TEST_CASE(zero_rows_give_zero_gradients_and_every_bucket)
{
    auto be = make_backend("omp");
    MlpConfig cfg;
    cfg.layers = {4, 8, 3};
    Mlp<float, float> m(*be, cfg, 4);
    m.init_params(1);
    be->fill(m.num_params(), m.grads(), 7.0f);
    std::vector<int> order;
    std::size_t covered = 0;
    m.loss_backward(nullptr, 0, 1, [&](int l, const LayerView& v) {
        order.push_back(l);
        covered += v.count();
    });
    BOOST_TEST(order == (std::vector<int>{1, 0}), boost::test_tools::per_element());
    BOOST_TEST(covered == m.num_params());
    std::vector<float> g(m.num_params());
    be->memory().to_host(g.data(), m.grads(), g.size() * sizeof(float));
    for (float x : g) BOOST_REQUIRE_EQUAL(x, 0.0f);
}

BOOST_AUTO_TEST_CASE(layout_is_pytorch_linear_order)
{
    const auto v = mlp_layout({3, 4, 2});
    BOOST_TEST(v.size() == 2u);
    BOOST_TEST(v[0].w == 0u);
    BOOST_TEST(v[0].b == 12u);
    BOOST_TEST(v[1].w == 16u);
    BOOST_TEST(v[1].b == 24u);
    BOOST_TEST(v[1].b + v[1].out == 26u);
}

BOOST_AUTO_TEST_CASE(parse_errors_name_the_value)
{
    BOOST_CHECK_EXCEPTION(parse_layers("784,x,10"), Error,
                          [](const Error& e) { return std::string(e.what()).find("'x'") != std::string::npos; });
    BOOST_CHECK_THROW(parse_layers("784"), Error);
    BOOST_CHECK_THROW(parse_layers("784,0,10"), Error);
    BOOST_CHECK_THROW(parse_enum<Act>("sigmoid"), Error);
    BOOST_CHECK_THROW(parse_enum<OptKind>("lamb"), Error);
    BOOST_CHECK_THROW(parse_enum<SchedKind>("linear"), Error);
    BOOST_TEST(parse_layers("784,512,256,10") == (std::vector<int>{784, 512, 256, 10}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(schedules)
{
    ScheduleConfig s;
    s.warmup = 4;
    BOOST_TEST(scheduled_lr(s, 1.0f, 0) == 0.25f);
    BOOST_TEST(scheduled_lr(s, 1.0f, 3) == 1.0f);
    BOOST_TEST(scheduled_lr(s, 1.0f, 100) == 1.0f);
    s.kind = SchedKind::step;
    s.step_size = 10;
    s.gamma = 0.5f;
    BOOST_TEST(scheduled_lr(s, 1.0f, 13) == 1.0f);
    BOOST_TEST(scheduled_lr(s, 1.0f, 14) == 0.5f);
    BOOST_TEST(scheduled_lr(s, 1.0f, 34) == 0.125f);
    s.kind = SchedKind::cosine;
    s.total_steps = 104;
    BOOST_TEST(std::fabs(scheduled_lr(s, 1.0f, 54) - 0.5f) < 1e-6f); // halfway through the cosine
    BOOST_TEST(scheduled_lr(s, 1.0f, 104) < 1e-6f);
}

// The clipping factor, applied by the optimizer step as it reads G: plain SGD with lr 1 from
// W = 0 leaves W = -scale * G.
BOOST_AUTO_TEST_CASE(clip_matches_torch_rule)
{
    auto be = make_backend("omp");
    const std::vector<float> g{3.0f, 4.0f}; // norm 5
    auto dg = upload(*be, g);
    const auto g16 = upload(*be, std::vector<bf16>{to_bf16(3.0f), to_bf16(4.0f)});
    for (const GradClip c : {clip_grad_norm(*be, dg.data(), 2, 1.0f), clip_grad_norm(*be, g16.data(), 2, 1.0f)}) {
        BOOST_TEST(std::fabs(c.norm - 5.0) < 1e-6);
        BOOST_TEST(c.scale == static_cast<float>(1.0 / (5.0 + 1e-6))); // torch: coef = max_norm / (norm + 1e-6)
        OptimizerConfig oc;
        oc.kind = OptKind::sgd;
        oc.lr = 1.0f;
        oc.momentum = 0.0f;
        Optimizer opt(*be, oc, 2);
        auto w = upload(*be, std::vector<float>{0.0f, 0.0f});
        opt.step(w.data(), dg.data(), 1.0f, nullptr, c.scale);
        const auto h = w.to_vector();
        BOOST_TEST(std::fabs(h[0] + 3.0 / (5.0 + 1e-6)) < 1e-7);
        BOOST_TEST(std::fabs(h[1] + 4.0 / (5.0 + 1e-6)) < 1e-7);
    }
    const GradClip under = clip_grad_norm(*be, dg.data(), 2, 10.0f); // under the limit: no scaling
    BOOST_TEST(under.scale == 1.0f);
    BOOST_TEST(clip_grad_norm(*be, dg.data(), 2, 0.0f).scale == 1.0f); // no clipping asked
    BOOST_TEST(dg.to_vector() == g, boost::test_tools::per_element()); // G itself is never rewritten
}

// XOR of the signs of two coordinates (not linearly separable), with a margin: an MLP must
// reach 100% training accuracy; SGD and Adam both.
BOOST_AUTO_TEST_CASE(learns_xor_to_100_percent)
{
    for (const OptKind kind : {OptKind::adam, OptKind::sgd}) {
        auto be = make_backend("omp");
        const int N = 256, F = 2;
        std::vector<float> x(N * F);
        std::vector<std::int32_t> y(N);
        const Rng rng(5, 77);
        for (int i = 0; i < N; ++i) {
            const float a = (0.2f + 0.8f * rng.uniform(2 * i)) * ((i & 1) ? 1.0f : -1.0f);
            const float b = (0.2f + 0.8f * rng.uniform(2 * i + 1)) * ((i & 2) ? 1.0f : -1.0f);
            x[2 * i] = a;
            x[2 * i + 1] = b;
            y[i] = ((a > 0) != (b > 0)) ? 1 : 0;
        }
        TrainConfig cfg;
        cfg.model.layers = {F, 32, 32, 2};
        cfg.model.activation = Act::tanh;
        cfg.opt.kind = kind;
        cfg.opt.lr = kind == OptKind::adam ? 1e-2f : 0.1f;
        cfg.batch = 32;
        cfg.epochs = 60;
        MemorySource train(*be, x, y, F, cfg.batch), eval(*be, x, y, F, 64);
        const std::unique_ptr<Step> step = make_step(*be, cfg, 64);
        step->model().init_params(cfg.seed);
        SingleComm comm;
        Trainer t(cfg, *step, comm);
        const TrainResult r = t.run(train, &eval, TrainState{}, RunLimits{});
        BOOST_TEST_MESSAGE(enum_name(kind) << ": train accuracy " << r.test.accuracy << " loss " << r.test.loss);
        BOOST_TEST(r.state.step == 60 * 8);
        BOOST_TEST(r.test.accuracy == 1.0);
    }
}

// ---- Non-finite values stop a step before the optimizer touches the parameters ----------------

namespace {

// One step of a relu MLP on a batch whose row 2 has `bad` as feature 1; returns the error.
std::string step_with_bad_input(const std::string& backend, float bad, std::vector<float>& before,
                                std::vector<float>& after)
{
    auto be = make_backend(backend);
    TrainConfig cfg;
    cfg.model.layers = {4, 8, 3};
    cfg.model.activation = Act::relu;
    cfg.opt.kind = OptKind::adam;
    cfg.opt.lr = 0.1f;
    const int B = 4;
    std::vector<float> x = random_floats(B * 4, 3);
    x[2 * 4 + 1] = bad;
    const auto X = upload(*be, x);
    const auto Y = upload(*be, std::vector<std::int32_t>{0, 1, 2, 1});
    const std::unique_ptr<Step> step = make_step(*be, cfg, B);
    Model& m = step->model();
    m.init_params(7);
    before = m.download_params();
    std::string msg = "no error";
    try {
        step->run(DeviceBatch{B, B, X.data(), Y.data()}, cfg.opt.lr, 17);
    } catch (const Error& e) {
        msg = e.what();
    }
    after = m.download_params();
    BOOST_TEST(step->optimizer().steps() == 0);
    return msg;
}

// A gradient sum that adds NaN to the summed gradient, as a rank whose data diverged would
// through the allreduce.
class PoisonSum final : public GradientSum<float> {
public:
    PoisonSum(Backend& be, float* G, std::size_t n) : GradientSum<float>(n), be_(be), G_(G) {}
    void ready(std::size_t off, std::size_t n) override { mark(off, n); }
    void finish() override
    {
        finish_step(0, [&] {
            const float nan = std::nanf("");
            be_.memory().to_device(G_ + 3, &nan, sizeof nan);
        });
    }
    std::string describe() const override { return "poison"; }
    const char* kind() const override { return "none"; }

private:
    Backend& be_;
    float* G_;
};

} // namespace

BOOST_AUTO_TEST_CASE(nan_input_through_relu_stops_the_step)
{
    // relu used to map NaN to 0, so one NaN feature left the loss finite while the first
    // layer's weights (and Adam's m, v) silently became NaN. Now it reaches the loss, and the
    // step stops before the update, naming it.
    for (const std::string backend : {"ref", "omp"}) {
        for (const float bad : {std::nanf(""), INFINITY}) {
            std::vector<float> before, after;
            const std::string msg = step_with_bad_input(backend, bad, before, after);
            BOOST_TEST_MESSAGE(backend << ": " << msg);
            BOOST_TEST(msg.rfind("step 17: loss is ", 0) == 0, backend << ": " << msg);
            BOOST_TEST(msg.find("(non-finite) at lr 0.1: stopped") != std::string::npos, backend << ": " << msg);
            BOOST_TEST(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)) == 0,
                       backend << ": the parameters changed");
        }
    }
}

BOOST_AUTO_TEST_CASE(non_finite_gradient_norm_stops_the_step_when_clipping)
{
    auto be = make_backend("omp");
    TrainConfig cfg;
    cfg.model.layers = {4, 8, 3};
    cfg.clip = 1.0f;
    const int B = 4;
    const auto X = upload(*be, random_floats(B * 4, 3));
    const auto Y = upload(*be, std::vector<std::int32_t>{0, 1, 2, 1});
    GradSums poison;
    poison.fp32 = [&](float* G, std::size_t n) { return std::make_unique<PoisonSum>(*be, G, n); };
    const std::unique_ptr<Step> step = make_step(*be, cfg, B, Precision::fp32, poison);
    Model& m = step->model();
    m.init_params(7);
    const std::vector<float> before = m.download_params();
    try {
        step->run(DeviceBatch{B, B, X.data(), Y.data()}, 0.5f, 9);
        BOOST_ERROR("no error for a NaN gradient");
    } catch (const Error& e) {
        BOOST_TEST(std::string(e.what()).rfind("step 9: gradient norm is nan (non-finite) at lr 0.5: stopped", 0) == 0,
                   e.what());
    }
    const std::vector<float> after = m.download_params();
    BOOST_TEST(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)) == 0);
}

BOOST_AUTO_TEST_CASE(allocation_failure_names_the_model_and_size)
{
    // A 1 GiB model under an address-space limit 64 MiB above what the process maps (so the
    // test does not depend on the machine's memory or overcommit policy): the error names the
    // model and the memory asked for, not just "std::bad_alloc". P = 32768*8192 + 8192 +
    // 8192*2 + 2 = 268460034; params + grads 2P floats, activations 8192 + 2 (relu on floats
    // keeps no pre-activation), scratch 2*8192: 536944646 floats = 2147778584 bytes.
    auto be = make_backend("omp");
    MlpConfig cfg;
    cfg.layers = {1 << 15, 1 << 13, 2};
    rlimit old{};
    BOOST_REQUIRE_EQUAL(getrlimit(RLIMIT_AS, &old), 0);
    std::ifstream status("/proc/self/status");
    std::uint64_t vm_kb = 0;
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stoull(line.substr(7));
    rlimit lim = old;
    lim.rlim_cur = vm_kb * 1024 + (std::uint64_t{64} << 20);
    BOOST_REQUIRE_EQUAL(setrlimit(RLIMIT_AS, &lim), 0);
    std::string msg = "no error";
    try {
        Mlp<float, float> m(*be, cfg, 1);
    } catch (const Error& e) {
        msg = e.what();
    }
    setrlimit(RLIMIT_AS, &old);
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.rfind("model 32768,8192,2 (268460034 parameters, batch 1): cannot allocate its 2147778584 bytes "
                         "(2.0 GiB) of ",
                         0) == 0,
               msg);
}
