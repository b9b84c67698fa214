// ompml-eval: loss, accuracy and the confusion matrix of a checkpoint on a dataset split.
//
//   ompml-eval --checkpoint run.h5 [--data FILE.h5] [--split test|train] [--backend omp]
//
// --data defaults to the dataset path stored in the checkpoint. Under mpirun each rank
// evaluates its slice of every batch and the sums are reduced; rank 0 prints.
#include "backend/backend.hpp"
#include "app/cli.hpp"
#include "core/check.hpp"
#include "parallel/comm.hpp"
#include "parallel/mpi_comm.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "nn/mlp.hpp"
#include "nn/trainer.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

namespace {

using namespace ompml;

int run(const MpiSession& mpi, int argc, char** argv)
{
    std::string checkpoint, data, split = "test", backend = "omp";
    int batch = 1000;
    CLI::App app{"ompml-eval: evaluate a checkpoint on a dataset split"};
    app.option_defaults()->always_capture_default();
    app.add_option("--checkpoint", checkpoint, "checkpoint file written by ompml-train")->required();
    app.add_option("--data", data, "dataset file (default: the one the checkpoint was trained on)");
    app.add_option("--split", split, "test | train")->check(CLI::IsMember({"test", "train"}));
    app.add_option("--backend", backend, "kernel backend");
    cli::add_int(app, "--batch", batch, "evaluation batch size", 1, 1 << 30);
    if (const auto rc = cli::parse(app, argc, argv, "ompml-eval", mpi.root())) return *rc;

    // Before the backend is made (see ompml-train): local rank -> device, for every backend.
    DeviceBinding binding;
    collective_try(mpi, [&] { binding = mpi.bind_device(backend); });
    Checkpoint ck;
    std::unique_ptr<Backend> be;
    std::unique_ptr<Loader> loader_p;
    const int C = [&] {
        int classes = 0;
        collective_try(mpi, [&] {
            ck = read_checkpoint(checkpoint);
            if (data.empty()) data = ck.data.path;
            be = make_backend(backend);
            LoaderOptions lo;
            lo.path = data;
            lo.split = split == "train" ? Split::train : Split::test;
            lo.global_batch = batch;
            lo.rank = mpi.rank();
            lo.nranks = mpi.size();
            lo.shuffle = false;
            loader_p = std::make_unique<Loader>(*be, lo);
            const DatasetInfo& ds = loader_p->dataset();
            require_features(ds, static_cast<std::uint64_t>(ck.config.model.layers.front()));
            classes = ck.config.model.layers.back();
            if (ds.classes != classes)
                throw Error("--data " + data + " has " + std::to_string(ds.classes) + " classes, the checkpoint's model " +
                            std::to_string(classes));
        });
        return classes;
    }();
    Loader& loader = *loader_p;

    Mlp model(*be, ck.config.model, loader.max_rows());
    restore_checkpoint(ck, model, nullptr);
    MpiReduceComm comm(mpi.comm());
    const EvalResult r = evaluate(model, loader, comm, true);
    const std::vector<std::string> where = gather_strings(mpi.comm(), mpi.processor() + ", " + binding.describe());
    if (!mpi.root()) return 0;

    std::printf("ompml-eval: %s (%s %s, step %lld, epoch %lld) on %s [%s], backend %s on %s, %d ranks\n",
                checkpoint.c_str(),
                layers_string(ck.config.model.layers).c_str(), enum_name(ck.config.model.activation),
                static_cast<long long>(ck.state.step), static_cast<long long>(ck.state.epoch), data.c_str(),
                split.c_str(), be->name(), be->device().c_str(), mpi.size());
    // Which device each rank used (one rank: the line above says it); the first 8, as ompml-train.
    const std::size_t shown = mpi.size() > 1 ? std::min<std::size_t>(where.size(), 8) : 0;
    for (std::size_t q = 0; q < shown; ++q) std::printf("  rank %-4zu %s\n", q, where[q].c_str());
    if (shown > 0 && shown < where.size()) std::printf("  ... (%zu more ranks)\n", where.size() - shown);
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
    MpiSession mpi(&argc, &argv); // outside: see run_on_every_rank
    return run_on_every_rank(mpi, "ompml-eval", [&] { return run(mpi, argc, argv); });
}
