// Checkpoint files (docs/checkpoint.md): per-layer tensors in PyTorch's nn.Linear layout, so
// h5py/torch can read them directly; flat buffers on our side (mlp_layout gives the offsets).
#include "io/checkpoint.hpp"

#include "io/atomic_file.hpp"
#include "io/h5.hpp"
#include "nn/settings.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <unistd.h>

namespace ompml {

const char* const kCheckpointMagic = "ompml-checkpoint\n";

namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "ompml-checkpoint";
// Version 2 added /config precision; version 1 files (fp32 runs) are read as fp32. Version 3 added
// /config reproducible_ranks; older files are read with it off (0).
constexpr std::int64_t kVersion = 3;
constexpr std::int64_t kOldestVersion = 1;

// The user block: the magic line, then a note for whoever looks at the raw bytes. Fixed text,
// so two runs that compute the same state still write the same file bytes.
const std::string& user_block()
{
    static const std::string text = std::string(kCheckpointMagic) +
        "An ompml training checkpoint (format version 3). The HDF5 file starts at byte 512 "
        "of this file; h5py and h5dump read it as it is. Schema: docs/checkpoint.md.\n";
    return text;
}

// A checkpoint that is readable but must not be used (non-finite tensors, bad counters): its
// message is the reason, without the "truncated or corrupt?" of a file HDF5 cannot read.
struct Refusal : Error {
    using Error::Error;
};

// "/params/layer0/weight[2, 5]" or "/optimizer/m/layer1/bias[3]": element `i` of a flat tensor.
std::string element_name(const std::vector<LayerView>& views, const std::string& group, std::size_t i)
{
    for (std::size_t l = 0; l < views.size(); ++l) {
        const LayerView& v = views[l];
        const std::string base = "/" + group + "/layer" + std::to_string(l);
        const std::size_t in = static_cast<std::size_t>(v.in), out = static_cast<std::size_t>(v.out);
        if (i >= v.w && i < v.b)
            return base + "/weight[" + std::to_string((i - v.w) / in) + ", " + std::to_string((i - v.w) % in) + "]";
        if (i >= v.b && i < v.b + out) return base + "/bias[" + std::to_string(i - v.b) + "]";
    }
    return "/" + group + "[" + std::to_string(i) + "]";
}

// "" when every element of the flat tensors is finite, else the first bad one, e.g.
// "/params/layer0/weight[2, 5] is nan".
std::string first_non_finite_tensor(const Checkpoint& ck, const std::vector<LayerView>& views)
{
    const std::pair<const char*, const std::vector<float>*> tensors[] = {
        {"params", &ck.params}, {"optimizer/m", &ck.m}, {"optimizer/v", &ck.v}};
    for (const auto& [group, t] : tensors) {
        const std::size_t i = first_non_finite(t->data(), t->size());
        if (i < t->size()) return element_name(views, group, i) + " is " + non_finite_name((*t)[i]);
    }
    return "";
}

// The /state and /optimizer counters must be possible ones: the trainer would otherwise fail
// only at its first step (or, for a negative step, run a schedule from before the start).
void check_counters(const Checkpoint& ck)
{
    const TrainState& s = ck.state;
    const auto need = [](bool ok, const std::string& what) {
        if (!ok) throw Refusal(what);
    };
    const auto num = [](auto v) { return std::to_string(v); };
    need(s.step >= 0, "/state step is " + num(s.step) + " (must be >= 0)");
    need(s.epoch >= 0, "/state epoch is " + num(s.epoch) + " (must be >= 0)");
    need(s.step_in_epoch >= 0, "/state step_in_epoch is " + num(s.step_in_epoch) + " (must be >= 0)");
    need(ck.opt_steps >= 0, "/optimizer steps is " + num(ck.opt_steps) + " (must be >= 0)");
    need(s.step_in_epoch <= s.step,
         "/state step_in_epoch " + num(s.step_in_epoch) + " exceeds /state step " + num(s.step) + " (inconsistent)");
    need(s.epoch <= s.step,
         "/state epoch " + num(s.epoch) + " exceeds /state step " + num(s.step) +
             " (every epoch takes a step; inconsistent)");
    need(ck.opt_steps == s.step,
         "/optimizer steps " + num(ck.opt_steps) + " differs from /state step " + num(s.step) + " (inconsistent)");
    need(std::isfinite(s.epoch_loss_sum) && s.epoch_loss_sum >= 0,
         "/state epoch_loss_sum is " + num(s.epoch_loss_sum) + " (must be finite and >= 0)");
    need(std::isfinite(s.epoch_rows) && s.epoch_rows >= 0,
         "/state epoch_rows is " + num(s.epoch_rows) + " (must be finite and >= 0)");
    need(ck.config.batch >= 1, "/config batch is " + num(ck.config.batch) + " (must be >= 1)");
}

// FNV-1a over the bytes of the tensors and the step: catches a file whose data was damaged
// after a successful write (HDF5 itself only notices broken metadata).
std::uint64_t fnv1a(std::uint64_t h, const void* p, std::size_t n)
{
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
std::int64_t checksum(const Checkpoint& ck)
{
    std::uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, ck.params.data(), ck.params.size() * sizeof(float));
    h = fnv1a(h, ck.m.data(), ck.m.size() * sizeof(float));
    h = fnv1a(h, ck.v.data(), ck.v.size() * sizeof(float));
    h = fnv1a(h, &ck.state.step, sizeof ck.state.step);
    std::int64_t s;
    std::memcpy(&s, &h, sizeof s);
    return s;
}

using h5::set_attr;
void set_int(hid_t o, const char* name, std::int64_t v) { set_attr(o, name, v); }
void set_dbl(hid_t o, const char* name, double v) { set_attr(o, name, v); }
void set_str(hid_t o, const char* name, const std::string& v) { set_attr(o, name, v); }

// /config holds every stored setting of the table (nn/settings.hpp) under its key: integers
// as int64, reals as double, the rest (enums, layer widths) as their text.
void write_settings(hid_t cfg, const TrainConfig& c)
{
    for_each_train_setting([&](const Spec& s, auto field) {
        using T = std::remove_cvref_t<decltype(field(c))>;
        if (s.store == Store::run_only) return;
        if constexpr (std::is_integral_v<T>)
            set_int(cfg, s.key, static_cast<std::int64_t>(field(c)));
        else if constexpr (std::is_floating_point_v<T>)
            set_dbl(cfg, s.key, static_cast<double>(field(c)));
        else
            set_str(cfg, s.key, value_text(field(c), true));
    });
}

void read_settings(hid_t cfg, std::int64_t version, TrainConfig& c)
{
    for_each_train_setting([&](const Spec& s, auto field) {
        using T = std::remove_cvref_t<decltype(field(c))>;
        if (s.store == Store::run_only || version < s.since) return;
        if constexpr (std::is_integral_v<T>)
            field(c) = static_cast<T>(h5::get_attr_int(cfg, s.key));
        else if constexpr (std::is_floating_point_v<T>)
            field(c) = static_cast<T>(h5::get_attr_double(cfg, s.key));
        else
            parse_value(h5::get_attr_string(cfg, s.key), field(c), s);
    });
}

// Writes the flat tensor `flat` as <group>/layerK/{weight,bias}.
void write_layers(hid_t file, const std::string& group, const std::vector<LayerView>& views,
                  const std::vector<float>& flat)
{
    h5::Handle g = h5::create_group_untimed(file, group);
    for (std::size_t l = 0; l < views.size(); ++l) {
        const LayerView& v = views[l];
        h5::Handle lg = h5::create_group_untimed(g, "layer" + std::to_string(l));
        const std::uint64_t out = static_cast<std::uint64_t>(v.out), in = static_cast<std::uint64_t>(v.in);
        h5::write(lg, "weight", h5::Dtype::f32, flat.data() + v.w, {out, in});
        h5::write(lg, "bias", h5::Dtype::f32, flat.data() + v.b, {out});
    }
}

std::vector<float> read_layers(hid_t file, const std::string& group, const std::vector<LayerView>& views)
{
    const std::size_t total = views.back().b + static_cast<std::size_t>(views.back().out);
    std::vector<float> flat;
    try {
        flat.resize(total);
    } catch (const std::bad_alloc&) {
        throw Refusal("/" + group + ": cannot allocate " + bytes_text(total * sizeof(float)) +
                      " of host memory for its tensors: out of memory");
    }
    for (std::size_t l = 0; l < views.size(); ++l) {
        const LayerView& v = views[l];
        const std::string base = group + "/layer" + std::to_string(l) + "/";
        const auto read = [&](const std::string& name, std::vector<std::uint64_t> dims, float* dst) {
            h5::Handle ds = h5::open_dataset(file, base + name);
            const h5::DatasetInfo di = h5::info(ds);
            if (di.dims != dims) {
                std::string want, got;
                for (auto d : dims) want += (want.empty() ? "" : ", ") + std::to_string(d);
                for (auto d : di.dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
                throw Error("/" + base + name + " has shape (" + got + "), the config's layers say (" + want + ")");
            }
            h5::read_rows(ds, h5::Dtype::f32, 0, dims[0], dst);
            // Checked before the checksum: a NaN written by a run that diverged has a valid
            // checksum, and the tensor and element are what the user needs to know.
            std::size_t n = 1;
            for (const std::uint64_t d : dims) n *= d;
            const std::size_t bad = first_non_finite(dst, n);
            if (bad < n)
                throw Refusal(element_name(views, group, dst + bad - flat.data()) + " is " + non_finite_name(dst[bad]) +
                              ": a checkpoint with non-finite parameters or optimizer state cannot be resumed or "
                              "evaluated");
        };
        read("weight", {static_cast<std::uint64_t>(v.out), static_cast<std::uint64_t>(v.in)}, flat.data() + v.w);
        read("bias", {static_cast<std::uint64_t>(v.out)}, flat.data() + v.b);
    }
    return flat;
}

Checkpoint read_unchecked(const std::string& path)
{
    h5::Handle f = h5::open_read(path);
    Checkpoint ck;
    if (!h5::exists(f, "config")) throw Error("not an ompml checkpoint (no /config group; is it a dataset file?)");
    h5::Handle cfg = h5::open_group(f, "config");
    if (!h5::has_attr(cfg, "format") || h5::get_attr_string(cfg, "format") != kFormat)
        throw Error("not an ompml checkpoint (no /config attribute format = \"" + std::string(kFormat) + "\")");
    const std::int64_t version = h5::get_attr_int(cfg, "version");
    if (version < kOldestVersion || version > kVersion)
        throw Error("checkpoint format version " + std::to_string(version) + ", this build reads " +
                    std::to_string(kOldestVersion) + " to " + std::to_string(kVersion));
    read_settings(cfg, version, ck.config);
    const TrainConfig& c = ck.config;
    ck.data.path = h5::get_attr_string(cfg, "data_path");
    ck.data.features = static_cast<std::uint64_t>(h5::get_attr_int(cfg, "data_features"));
    ck.data.classes = static_cast<int>(h5::get_attr_int(cfg, "data_classes"));
    ck.data.train_samples = static_cast<std::uint64_t>(h5::get_attr_int(cfg, "data_train_samples"));
    ck.data.test_samples = static_cast<std::uint64_t>(h5::get_attr_int(cfg, "data_test_samples"));

    h5::Handle st = h5::open_group(f, "state");
    ck.state.step = h5::get_attr_int(st, "step");
    ck.state.epoch = h5::get_attr_int(st, "epoch");
    ck.state.step_in_epoch = h5::get_attr_int(st, "step_in_epoch");
    ck.state.epoch_loss_sum = h5::get_attr_double(st, "epoch_loss_sum");
    ck.state.epoch_rows = h5::get_attr_double(st, "epoch_rows");
    ck.state.elapsed_s = h5::get_attr_double(st, "elapsed_seconds");
    const std::int64_t stored_sum = h5::get_attr_int(st, "checksum");

    h5::Handle opt = h5::open_group(f, "optimizer");
    if (h5::get_attr_string(opt, "kind") != enum_name(c.opt.kind))
        throw Error("/optimizer kind '" + h5::get_attr_string(opt, "kind") + "' differs from /config optimizer '" +
                    enum_name(c.opt.kind) + "'");
    ck.opt_steps = h5::get_attr_int(opt, "steps");
    check_counters(ck); // before the checksum, like the tensor checks: the attribute is the news

    const std::vector<LayerView> views = mlp_layout(c.model.layers);
    ck.params = read_layers(f, "params", views);
    ck.m = read_layers(f, "optimizer/m", views);
    if (c.opt.kind != OptKind::sgd) ck.v = read_layers(f, "optimizer/v", views);
    if (checksum(ck) != stored_sum) throw Error("checksum mismatch: the tensors were damaged after writing");
    return ck;
}

} // namespace

namespace {

// Whether an existing regular file starts with the checkpoint magic.
bool starts_with_magic(const std::string& path)
{
    const std::size_t n = std::strlen(kCheckpointMagic);
    std::ifstream in(path, std::ios::binary);
    std::string head(n, '\0');
    return in.read(head.data(), static_cast<std::streamsize>(n)) && head == kCheckpointMagic;
}

// Why the existing regular file `path` is not an ompml checkpoint, or "" when it is one
// (valid or damaged) or holds nothing.
std::string foreign_file_reason(const std::string& path)
{
    std::error_code ec;
    if (fs::file_size(path, ec) == 0 && !ec) return ""; // empty (e.g. from mktemp): nothing to lose
    if (starts_with_magic(path)) return "";
    std::lock_guard<std::recursive_mutex> guard(h5::lock());
    if (H5Fis_hdf5(path.c_str()) <= 0) return "is not an ompml checkpoint (not even an HDF5 file)";
    h5::Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.valid()) {
        h5::error_text(); // clears HDF5's error stack
        return "is an HDF5 file that cannot be opened, not a recognisable ompml checkpoint";
    }
    try {
        if (h5::exists(f, "config")) {
            const h5::Handle cfg = h5::open_group(f, "config");
            if (h5::has_attr(cfg, "format") && h5::get_attr_string(cfg, "format") == kFormat)
                return ""; // written by an older build (no user block)
        }
        if (h5::exists(f, "train") || h5::exists(f, "test"))
            return "is a dataset file (it has /train or /test), not an ompml checkpoint";
    } catch (const Error&) { // an odd /config: not ours
    }
    return "is an HDF5 file without the ompml-checkpoint format tag";
}

// Why `path` must not be replaced by a checkpoint, or "" when it may (missing, empty, ours).
std::string target_problem(const std::string& path)
{
    std::error_code ec;
    const fs::file_status link = fs::symlink_status(path, ec);
    if (!fs::exists(link)) return "";
    const fs::file_status st = fs::status(path, ec); // through symbolic links
    std::string via;
    if (fs::is_symlink(link)) {
        via = " (it is a symbolic link to " + fs::read_symlink(path, ec).string() + ")";
        if (!fs::exists(st))
            return "is a symbolic link to " + fs::read_symlink(path, ec).string() + ", which does not exist";
    }
    if (fs::is_directory(st)) return "is a directory" + via;
    if (!fs::is_regular_file(st)) return "is not a regular file" + via;
    const std::string reason = foreign_file_reason(path);
    return reason.empty() ? "" : reason + via;
}

} // namespace

void check_checkpoint_target(const std::string& path, bool keep_previous)
{
    const fs::path p(path);
    const std::string name = p.filename().string();
    if (name.empty() || name == "." || name == "..")
        throw Error("checkpoint " + path + ": names a directory, not a file");
    const std::string dir = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw Error("checkpoint " + path + ": directory " + dir + " does not exist");
    if (!fs::is_directory(dir, ec)) throw Error("checkpoint " + path + ": " + dir + " is not a directory");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw Error("checkpoint " + path + ": cannot create files in directory " + dir + ": " + std::strerror(errno));
    atomic_file::remove_stale(path);
    const std::string advice = ": refusing to overwrite it; choose another --checkpoint path or move the file away";
    if (const std::string why = target_problem(path); !why.empty())
        throw Error("checkpoint " + path + " " + why + advice);
    if (!keep_previous) return;
    const std::string prev = path + ".prev"; // the rotation renames a checkpoint over it
    if (const std::string why = target_problem(prev); !why.empty())
        throw Error("checkpoint " + path + ": its previous-checkpoint file " + prev + " " + why + advice);
}

Checkpoint capture_checkpoint(const TrainConfig& cfg, const DataDesc& data, const TrainState& state, const Model& model,
                              const Optimizer& opt)
{
    Checkpoint ck;
    ck.config = cfg;
    ck.data = data;
    ck.state = state;
    ck.opt_steps = opt.steps();
    ck.params = model.download_params();
    ck.m = opt.download_m();
    ck.v = opt.download_v();
    return ck;
}

void restore_checkpoint(const Checkpoint& ck, Model& model, Optimizer* opt)
{
    require(ck.config.model.layers == model.config().layers,
            "checkpoint layers " + layers_string(ck.config.model.layers) + " differ from the model's " +
                layers_string(model.config().layers));
    model.upload_params(ck.params);
    if (opt != nullptr) {
        opt->upload_state(ck.m, ck.v);
        opt->set_steps(ck.opt_steps);
    }
}

void write_checkpoint(const std::string& path, const Checkpoint& ck, bool keep_previous)
{
    std::lock_guard<std::recursive_mutex> guard(h5::lock()); // a streaming loader may be reading
    const std::vector<LayerView> views = mlp_layout(ck.config.model.layers);
    const std::size_t P = views.back().b + static_cast<std::size_t>(views.back().out);
    require(ck.params.size() == P && ck.m.size() == P && (ck.v.empty() || ck.v.size() == P),
            "write_checkpoint: tensor sizes do not match layers " + layers_string(ck.config.model.layers));
    // The last line of defence: whatever the caller checked, nothing but a checkpoint is
    // replaced, and a diverged state never replaces a good checkpoint.
    const std::string bad = first_non_finite_tensor(ck, views);
    if (!bad.empty())
        throw Error("step " + std::to_string(ck.state.step) + ": refusing to write checkpoint " + path + ": " + bad +
                    " (non-finite); the checkpoints already written are kept");
    check_checkpoint_target(path, keep_previous);
    h5::AtomicOptions atomic;
    atomic.keep_previous = keep_previous;
    atomic.keep_if = is_valid_checkpoint; // a damaged FILE is replaced, never rotated over FILE.prev
    atomic.user_block = user_block();
    h5::create_atomically(
        path,
        [&](hid_t f) {
            const TrainConfig& c = ck.config;
            h5::Handle cfg = h5::create_group_untimed(f, "config");
            set_str(cfg, "format", kFormat);
            set_int(cfg, "version", kVersion);
            write_settings(cfg, c);
            set_str(cfg, "data_path", ck.data.path);
            set_int(cfg, "data_features", static_cast<std::int64_t>(ck.data.features));
            set_int(cfg, "data_classes", ck.data.classes);
            set_int(cfg, "data_train_samples", static_cast<std::int64_t>(ck.data.train_samples));
            set_int(cfg, "data_test_samples", static_cast<std::int64_t>(ck.data.test_samples));

            write_layers(f, "params", views, ck.params);
            h5::Handle opt = h5::create_group_untimed(f, "optimizer");
            set_str(opt, "kind", enum_name(c.opt.kind));
            set_int(opt, "steps", ck.opt_steps);
            write_layers(f, "optimizer/m", views, ck.m);
            if (!ck.v.empty()) write_layers(f, "optimizer/v", views, ck.v);

            h5::Handle st = h5::create_group_untimed(f, "state");
            set_int(st, "step", ck.state.step);
            set_int(st, "epoch", ck.state.epoch);
            set_int(st, "step_in_epoch", ck.state.step_in_epoch);
            set_dbl(st, "epoch_loss_sum", ck.state.epoch_loss_sum);
            set_dbl(st, "epoch_rows", ck.state.epoch_rows);
            set_dbl(st, "elapsed_seconds", ck.state.elapsed_s);
            set_int(st, "seed", static_cast<std::int64_t>(c.seed)); // the shuffle is a function of (seed, epoch)
            set_int(st, "checksum", checksum(ck));
        },
        atomic);
}

Checkpoint read_checkpoint(const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(h5::lock());
    try {
        return read_unchecked(path);
    } catch (const Refusal& e) {
        throw Error(path + ": " + e.what());
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what == path + ": no such file" || what == path + ": not an HDF5 file") throw;
        throw Error(path + ": unreadable checkpoint (truncated or corrupt?): " + what);
    } catch (const std::bad_alloc&) { // a string or handle: the tensors have their own message
        throw Error(path + ": out of memory while reading the checkpoint");
    }
}

bool is_valid_checkpoint(const std::string& path)
{
    try {
        read_checkpoint(path);
        return true;
    } catch (const Error&) {
        return false;
    }
}

void save_checkpoint(const std::string& path, const TrainConfig& cfg, const DataDesc& data, const TrainState& state,
                     const Model& model, const Optimizer& opt, bool keep_previous)
{
    write_checkpoint(path, capture_checkpoint(cfg, data, state, model, opt), keep_previous);
}

} // namespace ompml
