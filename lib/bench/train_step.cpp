// Bench record of train_step, a pseudo-kernel: one whole training step (make_step, nn/step.hpp;
// --layers, relu, batch = Problem::batch, --precision) with Adam: forward + loss and backward +
// optimizer step on a fixed batch resident on the device, as one rank trains. Reported as
// (m = batch, n = parameter count, k = 1).
#include "bench/kernel.hpp"
#include "core/check.hpp"
#include "core/rng.hpp"
#include "nn/step.hpp"

#include <climits>

namespace ompml::bench {
namespace {

Dims step_dims(const Problem& p)
{
    require(p.batch <= INT_MAX, "--m must fit in an int");
    long long params = 0;
    for (const auto& v : mlp_layout(p.layers)) params += static_cast<long long>(v.count());
    return {p.batch, params, 1, p.precision};
}

Prepared prepare_train_step(Backend& be, const Problem& p, const Dims& d)
{
    const int B = static_cast<int>(d.m);
    TrainConfig cfg; // Adam, lr 1e-3, PyTorch defaults
    cfg.model.layers = p.layers;
    cfg.model.activation = Act::relu;
    cfg.model.precision = d.precision; // bf16: the model's mixed-precision types (nn/mlp.hpp)
    cfg.batch = B;
    std::shared_ptr<Step> step = make_step(be, cfg, B);
    step->model().init_params(7);
    // The fixed batch: X (B, IN) in [0, 1), Y (B) labels.
    const int in = p.layers.front(), classes = p.layers.back();
    std::vector<std::int32_t> lab(static_cast<std::size_t>(B));
    const Rng rng(2024, 18);
    for (int i = 0; i < B; ++i) lab[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng.below(i, classes));
    auto X = upload(be, random_floats(std::size_t(B) * in, 17, 0.0f, 1.0f)); // (B, IN)
    auto Y = upload(be, lab);                                                // (B)
    const float lr = cfg.opt.lr;
    const DeviceBatch batch{B, B, X->data(), Y->data()};
    return {[=] { step->run(batch, lr); },
            // The check runs `once` one time on fresh parameters: this is the mean loss on the
            // batch after that one step (so it covers forward, backward and the update).
            [=] {
                Model& model = step->model();
                model.forward(X->data(), B, false);
                const XentStats st = model.loss(Y->data(), B);
                return Result{{st.loss_sum / B}};
            }};
}

} // namespace

std::vector<Kernel> train_step_kernel()
{
    return {{
        .name = "train_step",
        .bound = Bound::flops,
        .dims = step_dims,
        // ~2 FLOPs per parameter and row forward, ~4 backward (dX and dW gemms), so
        // 6 * batch * params, an approximation that leaves out activations, softmax, bias sums
        // and the optimizer's per-parameter math.
        .flops = [](const Dims& d) { return 6.0 * d.m * d.n; },
        // An estimate per parameter: W read forward and backward (8), G written (4), Adam reads
        // W, G, m, v and writes W, m, v (28).
        .bytes = [](const Dims& d) { return 40.0 * d.n; },
        // The relative difference of the loss after one step: summation order and fused
        // multiply-adds differ between backends, and Adam's first step is ~lr * sign(g).
        .tolerance = [](const Dims&) { return 1e-4; },
        .prepare = prepare_train_step,
        .takes_precision = true,
    }};
}

} // namespace ompml::bench
