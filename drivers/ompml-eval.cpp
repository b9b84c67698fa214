// ompml-eval: loss, accuracy and the confusion matrix of a checkpoint on a dataset split.
//
//   ompml-eval --checkpoint run.h5 [--data FILE.h5] [--split test|train] [--backend omp]
//
// --data defaults to the dataset path stored in the checkpoint.
#include "backend/backend.hpp"
#include "core/check.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "nn/mlp.hpp"
#include "nn/trainer.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

namespace {

using namespace ompml;

int run(int argc, char** argv)
{
    std::string checkpoint, data, split = "test", backend = "omp";
    int batch = 1000;
    CLI::App app{"ompml-eval: evaluate a checkpoint on a dataset split"};
    app.option_defaults()->always_capture_default();
    app.add_option("--checkpoint", checkpoint, "checkpoint file written by ompml-train")->required();
    app.add_option("--data", data, "dataset file (default: the one the checkpoint was trained on)");
    app.add_option("--split", split, "test | train")->check(CLI::IsMember({"test", "train"}));
    app.add_option("--backend", backend, "kernel backend");
    app.add_option("--batch", batch, "evaluation batch size")->check(CLI::Range(1, 1 << 30));
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "ompml-eval: " << e.what() << "\n";
        return 2;
    }

    const Checkpoint ck = read_checkpoint(checkpoint);
    if (data.empty()) data = ck.data.path;
    std::unique_ptr<Backend> be = make_backend(backend);
    LoaderOptions lo;
    lo.path = data;
    lo.split = split == "train" ? Split::train : Split::test;
    lo.global_batch = batch;
    lo.shuffle = false;
    Loader loader(*be, lo);
    const DatasetInfo& ds = loader.dataset();
    require_features(ds, static_cast<std::uint64_t>(ck.config.model.layers.front()));
    const int C = ck.config.model.layers.back();
    if (ds.classes != C)
        throw Error("--data " + data + " has " + std::to_string(ds.classes) + " classes, the checkpoint's model " +
                    std::to_string(C));

    Mlp model(*be, ck.config.model, loader.max_rows());
    restore_checkpoint(ck, model, nullptr);
    SingleComm comm;
    LoaderSource<Loader, Batch> src(loader);
    const EvalResult r = evaluate(model, src, comm, true);

    std::printf("ompml-eval: %s (%s %s, step %lld, epoch %lld) on %s [%s], backend %s on %s\n", checkpoint.c_str(),
                layers_string(ck.config.model.layers).c_str(), activation_name(ck.config.model.activation),
                static_cast<long long>(ck.state.step), static_cast<long long>(ck.state.epoch), data.c_str(),
                split.c_str(), be->name(), be->device().c_str());
    std::printf("samples %llu loss %.4f accuracy %.4f\n", static_cast<unsigned long long>(r.samples), r.loss,
                r.accuracy);
    std::printf("confusion matrix (rows: true class, columns: predicted)\n%6s", "");
    for (int c = 0; c < C; ++c) std::printf(" %6d", c);
    std::printf(" %8s\n", "recall");
    for (int t = 0; t < C; ++t) {
        std::printf("%6d", t);
        long long row = 0;
        for (int p = 0; p < C; ++p) {
            const long long n = r.confusion[static_cast<std::size_t>(t) * C + p];
            row += n;
            std::printf(" %6lld", n);
        }
        const long long hit = r.confusion[static_cast<std::size_t>(t) * C + t];
        std::printf(" %8.4f\n", row > 0 ? static_cast<double>(hit) / row : 0.0);
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
        std::cerr << "ompml-eval: error: " << e.what() << "\n";
        return 1;
    }
}
