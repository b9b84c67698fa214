// ompml-eval's steps (eval.hpp).
#include "app/eval.hpp"

#include "app/cli.hpp"
#include "backend/backend.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "nn/step.hpp"
#include "parallel/mpi_comm.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

namespace ompml {

std::optional<int> parse_eval_flags(int argc, char** argv, bool print, EvalOptions& out)
{
    CLI::App app{"ompml-eval: evaluate a checkpoint on a dataset split"};
    cli::SettingFlags flags;
    flags.add(app, out, [](auto&& f) { for_each_eval_option(f); });
    app.get_option("--checkpoint")->required();
    if (const auto rc = cli::parse(app, argc, argv, "ompml-eval", print)) return rc;
    flags.apply();
    return std::nullopt;
}

EvalReport run_eval(const MpiSession& mpi, EvalOptions opt)
{
    // Before the backend is made (see ompml-train): local rank -> device, for every backend.
    DeviceBinding binding;
    collective_try(mpi, [&] { binding = mpi.bind_device(opt.backend); });
    Checkpoint ck;
    std::unique_ptr<Backend> be;
    std::unique_ptr<Loader> loader;
    collective_try(mpi, [&] {
        ck = read_checkpoint(opt.checkpoint);
        if (opt.data.empty()) opt.data = ck.data.path;
        be = make_backend(opt.backend);
        LoaderOptions lo;
        lo.path = opt.data;
        lo.split = opt.split;
        lo.global_batch = opt.batch;
        lo.rank = mpi.rank();
        lo.nranks = mpi.size();
        lo.shuffle = false;
        loader = std::make_unique<Loader>(*be, lo);
        const DatasetInfo& ds = loader->dataset();
        require_features(ds, static_cast<std::uint64_t>(ck.config.model.layers.front()));
        if (ds.classes != ck.config.model.layers.back())
            throw Error("--data " + opt.data + " has " + std::to_string(ds.classes) +
                        " classes, the checkpoint's model " + std::to_string(ck.config.model.layers.back()));
    });
    const std::unique_ptr<Model> model = make_model(*be, ck.config.model, loader->max_rows());
    restore_checkpoint(ck, *model, nullptr);
    MpiReduceComm comm(mpi.comm(), ck.config.reproducible_ranks > 0); // the run's order of sums
    EvalReport r;
    r.result = evaluate(*model, *loader, comm, true);
    r.where = gather_strings(mpi.comm(), mpi.processor() + ", " + binding.describe());
    r.checkpoint = opt.checkpoint;
    r.data = opt.data + " [" + enum_name(opt.split) + "]";
    r.model = layers_string(ck.config.model.layers) + " " + enum_name(ck.config.model.activation);
    r.backend = be->name();
    r.device = be->device();
    r.step = ck.state.step;
    r.epoch = ck.state.epoch;
    r.classes = model->classes();
    return r;
}

void print_eval(const EvalReport& r, int ranks)
{
    std::printf("ompml-eval: %s (%s, step %lld, epoch %lld) on %s, backend %s on %s, %d ranks\n", r.checkpoint.c_str(),
                r.model.c_str(), static_cast<long long>(r.step), static_cast<long long>(r.epoch), r.data.c_str(),
                r.backend.c_str(), r.device.c_str(), ranks);
    // Which device each rank used (one rank: the line above says it); the first 8, as ompml-train.
    const std::size_t shown = ranks > 1 ? std::min<std::size_t>(r.where.size(), 8) : 0;
    for (std::size_t q = 0; q < shown; ++q) std::printf("  rank %-4zu %s\n", q, r.where[q].c_str());
    if (shown > 0 && shown < r.where.size()) std::printf("  ... (%zu more ranks)\n", r.where.size() - shown);
    const EvalResult& e = r.result;
    std::printf("samples %llu loss %.4f accuracy %.4f\n", static_cast<unsigned long long>(e.samples), e.loss,
                e.accuracy);
    const int C = r.classes;
    std::printf("confusion matrix (rows: true class, columns: predicted)\n%6s", "");
    for (int c = 0; c < C; ++c) std::printf(" %6d", c);
    std::printf(" %8s\n", "recall");
    for (int t = 0; t < C; ++t) {
        std::printf("%6d", t);
        long long row = 0;
        for (int p = 0; p < C; ++p) {
            const long long n = e.confusion[static_cast<std::size_t>(t) * C + p];
            row += n;
            std::printf(" %6lld", n);
        }
        const long long hit = e.confusion[static_cast<std::size_t>(t) * C + t];
        std::printf(" %8.4f\n", row > 0 ? static_cast<double>(hit) / row : 0.0);
    }
}

} // namespace ompml
