// The C++ half of tests/torch_adam_step.py: builds a small MLP from a seed, writes it as a
// checkpoint (before.h5) with one random batch (batch.h5), takes `steps` training steps on that
// batch with the omp backend, and writes the result (after.h5; losses as an attribute of
// batch.h5). The script repeats the steps in PyTorch from before.h5 and compares.
//
//   torch_step_helper OUTDIR CASE      CASE: adam | adamw | sgd | sgd_bf16
#include "backend/backend.hpp"
#include "core/rng.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "nn/trainer.hpp"

#include <cstdio>
#include <string>

using namespace ompml;

int main(int argc, char** argv)
{
    try {
        require(argc == 3, "usage: torch_step_helper OUTDIR adam|adamw|sgd|sgd_bf16");
        const std::string dir = argv[1], kase = argv[2];
        TrainConfig cfg;
        cfg.model.layers = {30, 24, 16, 5};
        int steps = 1;
        if (kase == "adam") { // one plain Adam step, relu
            cfg.model.activation = Act::relu;
            cfg.opt.kind = OptKind::adam;
            cfg.opt.lr = 1e-3f;
        } else if (kase == "adamw") { // three AdamW steps, gelu, weight decay, clipping active
            cfg.model.activation = Act::gelu;
            cfg.opt.kind = OptKind::adamw;
            cfg.opt.lr = 1e-2f;
            cfg.opt.weight_decay = 0.05f;
            cfg.clip = 0.5f;
            steps = 3;
        } else if (kase == "sgd") { // three SGD momentum steps, tanh, L2 weight decay
            cfg.model.activation = Act::tanh;
            cfg.opt.kind = OptKind::sgd;
            cfg.opt.lr = 0.1f;
            cfg.opt.momentum = 0.9f;
            cfg.opt.weight_decay = 1e-3f;
            steps = 3;
        } else if (kase == "sgd_bf16") { // one SGD step in bf16 mixed precision, relu
            cfg.model.activation = Act::relu;
            cfg.model.precision = Precision::bf16;
            cfg.opt.kind = OptKind::sgd;
            cfg.opt.lr = 0.1f;
            cfg.opt.momentum = 0.0f;
        } else {
            throw Error("unknown case '" + kase + "'");
        }
        const int B = 16, F = cfg.model.layers.front(), C = cfg.model.layers.back();
        cfg.batch = B;
        cfg.seed = 5;
        auto be = make_backend("omp");
        const std::unique_ptr<Step> step = make_step(*be, cfg, B);
        Model& m = step->model();
        Optimizer& opt = step->optimizer();
        m.init_params(cfg.seed);
        const DataDesc dd{"(in memory)", static_cast<std::uint64_t>(F), C, static_cast<std::uint64_t>(B), 0};
        save_checkpoint(dir + "/before.h5", cfg, dd, TrainState{}, m, opt);

        std::vector<float> x(static_cast<std::size_t>(B) * F);
        std::vector<std::int32_t> y(B);
        const Rng rng(cfg.seed, 99);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal(i);
        for (int i = 0; i < B; ++i) y[i] = static_cast<std::int32_t>(rng.below(1000000 + i, C));
        DeviceBuffer<float> dx(be->memory(), x);
        DeviceBuffer<std::int32_t> dy(be->memory(), y);

        std::vector<double> losses;
        for (int s = 0; s < steps; ++s) {
            const XentStats st = step->run(DeviceBatch{B, B, dx.data(), dy.data()}, cfg.opt.lr);
            losses.push_back(st.loss_sum / B);
        }
        TrainState after;
        after.step = steps;
        after.step_in_epoch = steps;
        save_checkpoint(dir + "/after.h5", cfg, dd, after, m, opt);

        h5::create_atomically(dir + "/batch.h5", [&](hid_t f) {
            h5::write(f, "x", x, {static_cast<std::uint64_t>(B), static_cast<std::uint64_t>(F)});
            h5::write(f, "y", y);
            h5::write(f, "loss", losses); // the loss of each step, before its update
        });
        std::printf("%s: %d step(s), losses", kase.c_str(), steps);
        for (double l : losses) std::printf(" %.6f", l);
        std::printf("\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "torch_step_helper: error: %s\n", e.what());
        return 1;
    }
}
