// ompml-train: trains an MLP on an HDF5 dataset (data/README.md schema) and reports progress.
// This file only wires things: flags -> TrainConfig, Loader -> BatchSource, Trainer hooks ->
// console, metrics log and checkpoints. The loop itself is ompml::Trainer (lib/nn/trainer.hpp).
//
//   ompml-train --data data/fashion-mnist.h5 --layers 784,512,256,10 --activation relu \
//               --epochs 10 --batch 128 --optimizer adam --lr 1e-3 --seed 1 --backend omp
//
// Resume (--resume FILE): model, optimizer, schedule, seed and batch come from the checkpoint
// (an explicitly given flag that disagrees is an error); --epochs may extend the run; --data
// defaults to the checkpoint's dataset path.
//
// Data parallelism: one rank for now. The seams are `Comm` (SingleComm here) and `is_root`:
// only the root prints and writes files.
#include "backend/backend.hpp"
#include "core/check.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "io/metrics.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/trainer.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

namespace {

using namespace ompml;

struct Args {
    std::string data = "data/fashion-mnist.h5";
    std::string layers = "784,512,256,10";
    std::string activation = "relu";
    std::string optimizer = "adam";
    std::string schedule = "constant";
    std::string backend = "omp";
    int epochs = 10;
    int batch = 128;
    int eval_batch = 1000;
    double lr = 1e-3;
    double momentum = 0.9;
    double weight_decay = -1.0; // unset: 0, or 0.01 for adamw (PyTorch's defaults)
    std::int64_t warmup = 0;
    std::int64_t step_size = 0;
    int step_epochs = 0;
    double gamma = 0.1;
    double clip = 0.0;
    std::uint64_t seed = 1;
    std::int64_t max_steps = 0;
    std::int64_t checkpoint_every = 0;
    std::string metrics, checkpoint, resume;
    bool streaming = false;
};

std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string duration(double s)
{
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 120) return fmt("%.0f s", s);
    if (s < 7200) return fmt("%.1f min", s / 60);
    return fmt("%.1f h", s / 3600);
}

// Parse errors read "layers '7,x': ..."; prefixed with "--" they name the flag.
template <class F>
auto parse_flag(F&& f) -> decltype(f())
{
    try {
        return f();
    } catch (const Error& e) {
        throw Error(std::string("--") + e.what());
    }
}

// Number checks whose messages read "--epochs: value 0 must be > 0" (CLI11 prefixes the flag).
CLI::Validator number_check(bool strictly_positive)
{
    return CLI::Validator(
        [strictly_positive](std::string& s) -> std::string {
            double v = 0.0;
            std::size_t used = 0;
            try {
                v = std::stod(s, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != s.size() || !std::isfinite(v)) return "value '" + s + "' is not a number";
            if (strictly_positive ? !(v > 0) : v < 0)
                return "value " + s + (strictly_positive ? " must be > 0" : " must be >= 0");
            return {};
        },
        strictly_positive ? "> 0" : ">= 0");
}
const CLI::Validator kPositive = number_check(true);
const CLI::Validator kNonNegative = number_check(false);

// On resume: a flag given explicitly must agree with the checkpoint.
void agree(const CLI::App& app, const char* flag, const std::string& given, const std::string& stored)
{
    if (app.count(flag) > 0 && given != stored)
        throw Error(std::string(flag) + " " + given + " conflicts with the checkpoint's " + stored +
                    " (a resumed run keeps its settings)");
}

int run(int argc, char** argv)
{
    Args a;
    CLI::App app{"ompml-train: train an MLP with OpenMP target offload kernels"};
    app.option_defaults()->always_capture_default();
    app.add_option("--data", a.data,
                   "dataset file (HDF5, data/README.md); make the default with "
                   "`ompml-data import-idx /usr/share/datasets/fashion-mnist -o data/fashion-mnist.h5`");
    app.add_option("--layers", a.layers, "widths: input,hidden...,classes");
    app.add_option("--activation", a.activation, "hidden activation: relu | tanh | gelu");
    app.add_option("--epochs", a.epochs, "epochs to train (in total, counting resumed ones)")
        ->check(kPositive);
    app.add_option("--batch", a.batch, "global batch size")->check(kPositive);
    app.add_option("--eval-batch", a.eval_batch, "batch size for evaluation")->check(kPositive);
    app.add_option("--optimizer", a.optimizer, "sgd | adam | adamw");
    app.add_option("--lr", a.lr, "base learning rate")->check(kPositive);
    app.add_option("--momentum", a.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
    app.add_option("--weight-decay", a.weight_decay, "weight decay (default 0; 0.01 for adamw)")
        ->check(kNonNegative)
        ->capture_default_str();
    app.add_option("--schedule", a.schedule, "lr schedule: constant | step | cosine");
    app.add_option("--warmup", a.warmup, "linear warmup steps")->check(kNonNegative);
    app.add_option("--step-size", a.step_size, "step schedule: decay every N steps")->check(kNonNegative);
    app.add_option("--step-epochs", a.step_epochs, "step schedule: decay every N epochs")
        ->check(kNonNegative);
    app.add_option("--gamma", a.gamma, "step schedule: decay factor")->check(kPositive);
    app.add_option("--clip", a.clip, "clip gradients to this global L2 norm (0: off)")->check(kNonNegative);
    app.add_option("--seed", a.seed, "seed of init and shuffle");
    app.add_option("--backend", a.backend, "kernel backend: " + [] {
        std::string s;
        for (const auto& n : available_backends()) s += (s.empty() ? "" : " | ") + n;
        return s;
    }());
    app.add_option("--max-steps", a.max_steps, "stop after this many steps in total (0: no limit)")
        ->check(kNonNegative);
    app.add_option("--metrics", a.metrics, "append one JSON line per epoch to this file");
    app.add_option("--checkpoint", a.checkpoint, "write checkpoints to this file (at the end, and see --checkpoint-every)");
    app.add_option("--checkpoint-every", a.checkpoint_every, "also checkpoint every N steps")
        ->check(kNonNegative);
    app.add_option("--resume", a.resume, "resume from this checkpoint");
    app.add_flag("--streaming", a.streaming, "read batches from the file instead of holding the split in memory");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "ompml-train: " << e.what() << "\n";
        return 2;
    }
    if (a.checkpoint_every > 0 && a.checkpoint.empty())
        throw Error("--checkpoint-every " + std::to_string(a.checkpoint_every) + " needs --checkpoint FILE");
    if (a.step_size > 0 && a.step_epochs > 0) throw Error("--step-size and --step-epochs are exclusive");

    SingleComm comm; // the MPI driver substitutes its communicator here
    const bool is_root = comm.rank() == 0;

    // ---- configuration: flags, or the checkpoint when resuming ----
    TrainConfig cfg;
    TrainState start;
    std::optional<Checkpoint> ck;
    if (!a.resume.empty()) {
        ck = read_checkpoint(a.resume);
        cfg = ck->config;
        start = ck->state;
        agree(app, "--layers", layers_string(parse_flag([&] { return parse_layers(a.layers); })),
              layers_string(cfg.model.layers));
        agree(app, "--activation", a.activation, activation_name(cfg.model.activation));
        agree(app, "--optimizer", a.optimizer, optimizer_name(cfg.opt.kind));
        agree(app, "--schedule", a.schedule, schedule_name(cfg.sched.kind));
        agree(app, "--lr", fmt("%g", a.lr), fmt("%g", cfg.opt.lr));
        agree(app, "--batch", std::to_string(a.batch), std::to_string(cfg.batch));
        agree(app, "--seed", std::to_string(a.seed), std::to_string(cfg.seed));
        if (app.count("--epochs") > 0) cfg.epochs = a.epochs;
        if (app.count("--data") == 0) a.data = ck->data.path;
    } else {
        cfg.model.layers = parse_flag([&] { return parse_layers(a.layers); });
        cfg.model.activation = parse_flag([&] { return parse_activation(a.activation); });
        cfg.opt.kind = parse_flag([&] { return parse_optimizer(a.optimizer); });
        cfg.opt.lr = static_cast<float>(a.lr);
        cfg.opt.momentum = static_cast<float>(a.momentum);
        cfg.opt.weight_decay =
            static_cast<float>(a.weight_decay >= 0 ? a.weight_decay : (cfg.opt.kind == OptKind::adamw ? 0.01 : 0.0));
        cfg.sched.kind = parse_flag([&] { return parse_schedule(a.schedule); });
        cfg.sched.warmup = a.warmup;
        cfg.sched.step_size = a.step_size;
        cfg.sched.gamma = static_cast<float>(a.gamma);
        cfg.clip = static_cast<float>(a.clip);
        cfg.seed = a.seed;
        cfg.batch = a.batch;
        cfg.epochs = a.epochs;
        cfg.eval_batch = a.eval_batch;
    }

    std::unique_ptr<Backend> be = make_backend(a.backend);

    // ---- data ----
    LoaderOptions lo;
    lo.path = a.data;
    lo.global_batch = cfg.batch;
    lo.rank = comm.rank();
    lo.nranks = comm.size();
    lo.seed = cfg.seed;
    lo.streaming = a.streaming;
    Loader train_loader(*be, lo);
    LoaderOptions to = lo;
    to.split = Split::test;
    to.global_batch = cfg.eval_batch;
    to.shuffle = false;
    Loader test_loader(*be, to);
    const DatasetInfo& ds = train_loader.dataset();
    require_features(ds, static_cast<std::uint64_t>(cfg.model.layers.front()));
    if (ds.classes != cfg.model.layers.back())
        throw Error("--layers " + layers_string(cfg.model.layers) + ": the last width " +
                    std::to_string(cfg.model.layers.back()) + " must equal the dataset's " +
                    std::to_string(ds.classes) + " classes (" + a.data + ")");
    const std::int64_t spe = train_loader.steps_per_epoch();
    if (a.step_epochs > 0 && !ck) cfg.sched.step_size = static_cast<std::int64_t>(a.step_epochs) * spe;
    if (!ck) cfg.sched = Trainer::resolve_schedule(cfg, spe); // fixes the cosine length in the checkpoint
    if (cfg.sched.kind == SchedKind::step && cfg.sched.step_size <= 0)
        throw Error("--schedule step needs --step-size N or --step-epochs N");
    if (ck && ck->data.features != ds.features)
        throw Error("--data " + a.data + ": " + std::to_string(ds.features) + " features, the checkpoint was trained on " +
                    std::to_string(ck->data.features));
    DataDesc data{a.data, ds.features, ds.classes, train_loader.samples(), test_loader.samples()};

    // ---- model and optimizer ----
    Mlp model(*be, cfg.model, std::max(train_loader.max_rows(), test_loader.max_rows()));
    Optimizer opt(*be, cfg.opt, model.num_params());
    if (ck)
        restore_checkpoint(*ck, model, &opt);
    else
        model.init_params(cfg.seed);

    if (is_root) {
        std::printf("ompml-train: backend %s on %s\n", be->name(), be->device().c_str());
        std::printf("  data      %s: train %llu, test %llu, features %llu, classes %d%s\n", a.data.c_str(),
                    static_cast<unsigned long long>(data.train_samples),
                    static_cast<unsigned long long>(data.test_samples),
                    static_cast<unsigned long long>(data.features), data.classes,
                    a.streaming ? " (streaming)" : "");
        std::printf("  model     %s %s, %zu parameters\n", layers_string(cfg.model.layers).c_str(),
                    activation_name(cfg.model.activation), model.num_params());
        std::printf("  optimizer %s lr %g weight_decay %g%s, schedule %s (warmup %lld", optimizer_name(cfg.opt.kind),
                    cfg.opt.lr, cfg.opt.weight_decay,
                    cfg.opt.kind == OptKind::sgd ? fmt(" momentum %g", cfg.opt.momentum).c_str() : "",
                    schedule_name(cfg.sched.kind), static_cast<long long>(cfg.sched.warmup));
        if (cfg.sched.kind == SchedKind::step)
            std::printf(", gamma %g every %lld steps", cfg.sched.gamma, static_cast<long long>(cfg.sched.step_size));
        if (cfg.sched.kind == SchedKind::cosine)
            std::printf(", over %lld steps", static_cast<long long>(cfg.sched.total_steps));
        std::printf("), clip %s\n", cfg.clip > 0 ? fmt("%g", cfg.clip).c_str() : "off");
        std::printf("  run       epochs %d, batch %d (%lld steps/epoch), seed %llu, ranks %d", cfg.epochs, cfg.batch,
                    static_cast<long long>(spe), static_cast<unsigned long long>(cfg.seed), comm.size());
        if (a.max_steps > 0) std::printf(", max-steps %lld", static_cast<long long>(a.max_steps));
        std::printf("\n");
        if (ck)
            std::printf("  resume    %s at step %lld (epoch %lld, step %lld in it)\n", a.resume.c_str(),
                        static_cast<long long>(start.step), static_cast<long long>(start.epoch),
                        static_cast<long long>(start.step_in_epoch));
        if (!a.checkpoint.empty())
            std::printf("  checkpoint %s%s\n", a.checkpoint.c_str(),
                        a.checkpoint_every > 0
                            ? (" every " + std::to_string(a.checkpoint_every) + " steps and at the end").c_str()
                            : " at the end");
        std::fflush(stdout);
    }

    std::unique_ptr<MetricsLog> metrics;
    if (is_root && !a.metrics.empty()) metrics = std::make_unique<MetricsLog>(a.metrics, ck.has_value());

    // ---- hooks: console, metrics, checkpoints (root only) ----
    const std::int64_t total_steps = a.max_steps > 0 ? std::min<std::int64_t>(a.max_steps, cfg.epochs * spe)
                                                     : static_cast<std::int64_t>(cfg.epochs) * spe;
    const bool live = is_root && isatty(fileno(stdout));
    double last_live = -1.0;
    double rate = 0.0; // samples/s of the last epoch, for the ETA
    Hooks hooks;
    hooks.on_step = [&](const StepReport& r) {
        if (!live || r.epoch_seconds - last_live < 0.25) return;
        last_live = r.epoch_seconds;
        const double sps = r.epoch_seconds > 0 ? r.epoch_samples / r.epoch_seconds : 0.0;
        const double eta = sps > 0 ? static_cast<double>(total_steps - r.step) * cfg.batch / sps : NAN;
        std::printf("\r  epoch %lld/%d step %lld/%lld loss %.4f %.0f samples/s ETA %s   ",
                    static_cast<long long>(r.epoch + 1), cfg.epochs, static_cast<long long>(r.step_in_epoch),
                    static_cast<long long>(r.steps_per_epoch), r.loss, sps, duration(eta).c_str());
        std::fflush(stdout);
    };
    hooks.on_epoch = [&](const EpochReport& r) {
        rate = r.samples_per_s;
        if (metrics)
            metrics->write(MetricsRecord{r.epoch, r.step, r.train_loss, r.test_loss, r.test_acc, r.lr,
                                         r.total_seconds, r.samples_per_s});
        if (!is_root) return;
        const double eta = rate > 0 ? static_cast<double>(total_steps - r.step) * cfg.batch / rate : NAN;
        if (live) std::printf("\r%100s\r", "");
        std::printf("epoch %lld/%d step %lld train_loss %.4f test_loss %.4f test_acc %.4f lr %.3g %.0f samples/s "
                    "ETA %s\n",
                    static_cast<long long>(r.epoch), cfg.epochs, static_cast<long long>(r.step), r.train_loss,
                    r.test_loss, r.test_acc, static_cast<double>(r.lr), r.samples_per_s, duration(eta).c_str());
        std::fflush(stdout);
        last_live = -1.0;
    };
    hooks.on_checkpoint = [&](const TrainState& s) {
        if (!is_root || a.checkpoint.empty()) return;
        save_checkpoint(a.checkpoint, cfg, data, s, model, opt);
    };

    RunLimits limits;
    limits.max_steps = a.max_steps;
    limits.checkpoint_every = a.checkpoint_every;
    LoaderSource<Loader, Batch> train_src(train_loader), test_src(test_loader);
    Trainer trainer(*be, cfg, model, opt, comm);
    const TrainResult res = trainer.run(train_src, &test_src, start, limits, hooks);

    if (is_root) {
        if (live) std::printf("\r%100s\r", "");
        std::printf("final: test_acc %.4f test_loss %.4f epochs %lld steps %lld time %.1f s%s\n", res.test.accuracy,
                    res.test.loss, static_cast<long long>(res.state.epoch), static_cast<long long>(res.state.step),
                    res.seconds, res.stopped_early ? " (stopped by --max-steps)" : "");
        if (!a.checkpoint.empty()) std::printf("checkpoint: %s\n", a.checkpoint.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::cerr << "ompml-train: error: " << e.what() << "\n";
        return 1;
    }
}
