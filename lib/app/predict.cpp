// ompml-predict's steps (predict.hpp).
#include "app/predict.hpp"

#include "app/cli.hpp"
#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/provenance.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "io/images.hpp"
#include "io/output_target.hpp"
#include "nn/step.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ompml {

std::optional<int> parse_predict_flags(int argc, char** argv, bool print, PredictOptions& out)
{
    CLI::App app{"ompml-predict: class probabilities and predictions of a checkpoint on images (no labels needed)"};
    cli::SettingFlags flags;
    flags.add(app, out, [](auto&& f) { for_each_predict_option(f); });
    app.get_option("--checkpoint")->required();
    app.get_option("--output")->required();
    app.get_option("--backend")->description(cli::backend_help(available_backends()));
    if (const auto rc = cli::parse(app, argc, argv, "ompml-predict", print)) return rc;
    flags.apply();
    return std::nullopt;
}

Predictions predict(const MpiSession& mpi, PredictOptions opt)
{
    if (mpi.size() != 1)
        throw CollectiveError("ompml-predict runs as one process (started on " + std::to_string(mpi.size()) + " ranks)",
                              -1, 0);
    mpi.bind_device(opt.backend); // before the backend allocates
    check_output(opt.output, FileKind::predictions, "-o",
                 "choose another -o path, move the file away, or give --force to replace it", opt.force);
    const Checkpoint ck = read_checkpoint(opt.checkpoint);
    if (opt.data.empty()) opt.data = ck.data.path;
    const Images im = read_images(opt.data, opt.split);
    const MlpConfig& mc = ck.config.model;
    if (im.features != static_cast<std::uint64_t>(mc.layers.front()))
        throw Error("--data " + opt.data + ": " + im.source + " has " + std::to_string(im.features) +
                    " features per image, the checkpoint's model takes " + std::to_string(mc.layers.front()));

    const std::unique_ptr<Backend> be = make_backend(opt.backend);
    const int B = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(opt.batch), im.rows));
    const std::unique_ptr<Model> model = make_model(*be, mc, B);
    restore_checkpoint(ck, *model, nullptr);
    const MemorySpace& mem = be->memory();
    const std::size_t F = im.features;
    const int C = model->classes();
    DeviceBuffer<std::uint8_t> raw(mem, im.dtype == h5::Dtype::u8 ? static_cast<std::size_t>(B) * F : 0);
    DeviceBuffer<float> x(mem, static_cast<std::size_t>(B) * F); // (B, F)
    std::vector<float> logits(static_cast<std::size_t>(B) * C);  // (B, C), host

    Predictions p;
    p.rows = im.rows;
    p.classes = C;
    p.probabilities.resize(im.rows * static_cast<std::size_t>(C));
    p.predictions.resize(im.rows);
    for (std::uint64_t r0 = 0; r0 < im.rows; r0 += static_cast<std::uint64_t>(B)) {
        const int n = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(B), im.rows - r0));
        const std::size_t elems = static_cast<std::size_t>(n) * F;
        if (im.dtype == h5::Dtype::u8) { // as the loader does: uint8 up, x / 255 on the device
            raw.upload(im.bytes.data() + r0 * F, elems);
            be->normalize_u8(elems, raw.data(), x.data(), 1.0f / 255.0f, 0.0f);
        } else {
            x.upload(reinterpret_cast<const float*>(im.bytes.data()) + r0 * F, elems);
        }
        const float* z = model->forward(x.data(), n, false); // (n, C)
        mem.to_host(logits.data(), z, static_cast<std::size_t>(n) * C * sizeof(float));
        for (int r = 0; r < n; ++r) {
            const float* zr = logits.data() + static_cast<std::size_t>(r) * C;
            float* pr = p.probabilities.data() + (r0 + static_cast<std::uint64_t>(r)) * C;
            const float* top = std::max_element(zr, zr + C); // the first maximum, as ompml-eval
            double sum = 0.0;
            for (int c = 0; c < C; ++c) sum += std::exp(static_cast<double>(zr[c]) - *top);
            for (int c = 0; c < C; ++c) pr[c] = static_cast<float>(std::exp(static_cast<double>(zr[c]) - *top) / sum);
            p.predictions[r0 + static_cast<std::uint64_t>(r)] = static_cast<std::int32_t>(top - zr);
        }
    }
    p.labels = im.labels;
    p.checkpoint = opt.checkpoint;
    p.data = opt.data;
    p.source = im.source;
    p.model = layers_string(mc.layers) + " " + enum_name(mc.activation);
    p.backend = be->name();
    p.device = be->device();
    p.step = ck.state.step;
    return p;
}

void write_predictions(const std::string& path, const Predictions& p, const Provenance& provenance)
{
    h5::create_atomically(path, [&](hid_t f) {
        h5::write(f, "probabilities", p.probabilities, {p.rows, static_cast<std::uint64_t>(p.classes)});
        h5::write(f, "predictions", p.predictions);
        if (!p.labels.empty()) h5::write(f, "labels", p.labels);
        h5::set_attr(f, "format", std::string("ompml-predictions"));
        h5::set_attr(f, "checkpoint", p.checkpoint);
        h5::set_attr(f, "checkpoint_step", p.step);
        h5::set_attr(f, "data", p.data);
        h5::set_attr(f, "source", p.source);
        h5::set_attr(f, "classes", static_cast<std::int64_t>(p.classes));
        h5::set_attr(f, "created_by", std::string("ompml-predict"));
        h5::Handle g = h5::create_group_untimed(f, "provenance");
        for (const auto& [key, value] : provenance) h5::set_attr(g, key, value);
    });
}

void print_predictions(const std::string& path, const Predictions& p)
{
    std::string acc;
    if (!p.labels.empty()) {
        std::uint64_t hit = 0;
        for (std::uint64_t i = 0; i < p.rows; ++i) hit += p.predictions[i] == p.labels[i];
        char buf[64];
        std::snprintf(buf, sizeof buf, ", accuracy %.4f against its labels", static_cast<double>(hit) / p.rows);
        acc = buf;
    }
    std::printf("ompml-predict: wrote %s: %llu rows of %d class probabilities from %s (%s, step %lld) on %s %s, "
                "backend %s on %s%s\n",
                path.c_str(), static_cast<unsigned long long>(p.rows), p.classes, p.checkpoint.c_str(), p.model.c_str(),
                static_cast<long long>(p.step), p.data.c_str(), p.source.c_str(), p.backend.c_str(), p.device.c_str(),
                acc.c_str());
}

} // namespace ompml
