// Training end to end through the real pipeline (synthetic HDF5 file -> Loader -> Trainer ->
// checkpoint files): same seed => bitwise identical checkpoints; stop at step k + resume =>
// the uninterrupted run's final checkpoint, bit for bit (inside an epoch, at and across an
// epoch boundary, with a short last batch); corrupt and truncated checkpoints are refused;
// metrics lines are JSON.
#define BOOST_TEST_MODULE train
#include "support.hpp"

#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "io/loader.hpp"
#include "io/metrics.hpp"
#include "io/synth.hpp"
#include "nn/trainer.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

using namespace ompml;
namespace fs = std::filesystem;

namespace {

// A scratch directory per test program run, with a small synthetic dataset:
// 2000 train rows, batch 64 => 32 steps per epoch, the last one 16 rows.
struct Scratch {
    fs::path dir;
    std::string data;
    Scratch()
    {
        dir = fs::temp_directory_path() / ("ompml_test_train_" + std::to_string(::getpid()));
        fs::create_directories(dir);
        SynthOptions o;
        o.train = 2000;
        o.test = 300;
        o.features = 24;
        o.classes = 5;
        o.seed = 9;
        data = (dir / "synth.h5").string();
        write_synth(o, data);
    }
    ~Scratch()
    {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
};
const Scratch& scratch()
{
    static const Scratch s;
    return s;
}

TrainConfig base_config(OptKind kind)
{
    TrainConfig c;
    c.model.layers = {24, 32, 16, 5};
    c.model.activation = Act::gelu;
    c.opt.kind = kind;
    c.opt.lr = kind == OptKind::sgd ? 0.05f : 3e-3f;
    c.opt.weight_decay = kind == OptKind::adam ? 0.0f : 0.01f;
    c.seed = 11;
    c.batch = 64;
    c.epochs = 3;
    c.eval_batch = 128;
    c.clip = 1.0f;
    if (kind == OptKind::sgd) {
        c.sched.kind = SchedKind::step;
        c.sched.step_size = 20;
        c.sched.gamma = 0.5f;
    } else {
        c.sched.kind = SchedKind::cosine;
        c.sched.warmup = 10;
    }
    return c;
}

// What ompml-train does, minus the console: fresh (resume empty) or resumed; writes `out`
// at the end (and wherever the trainer asks). Returns the final checkpoint as read back.
// checkpoint_every > 0: also every that many steps, rotating the previous file to out.prev as
// ompml-train does.
Checkpoint train(TrainConfig cfg, const std::string& out, std::int64_t max_steps = 0, const std::string& resume = "",
                 std::vector<EpochReport>* epochs = nullptr, std::int64_t checkpoint_every = 0)
{
    auto be = make_backend("omp");
    std::optional<Checkpoint> ck;
    TrainState start;
    if (!resume.empty()) {
        ck = read_checkpoint(resume);
        const int epochs = cfg.epochs;
        cfg = ck->config;
        cfg.epochs = epochs;
        start = ck->state;
    }
    LoaderOptions lo;
    lo.path = scratch().data;
    lo.global_batch = cfg.batch;
    lo.seed = cfg.seed;
    Loader tl(*be, lo);
    lo.split = Split::test;
    lo.global_batch = cfg.eval_batch;
    lo.shuffle = false;
    Loader el(*be, lo);
    if (!ck) cfg.sched = Trainer::resolve_schedule(cfg, tl.steps_per_epoch());
    const std::unique_ptr<Step> step = make_step(*be, cfg, std::max(tl.max_rows(), el.max_rows()));
    Model& m = step->model();
    Optimizer& opt = step->optimizer();
    if (ck)
        restore_checkpoint(*ck, m, &opt);
    else
        m.init_params(cfg.seed);
    const DataDesc dd{scratch().data, 24, 5, tl.samples(), el.samples()};
    Hooks hooks;
    hooks.on_checkpoint = [&](const TrainState& s) { save_checkpoint(out, cfg, dd, s, m, opt, checkpoint_every > 0); };
    hooks.on_epoch = [&](const EpochReport& r) {
        if (epochs != nullptr) epochs->push_back(r);
    };
    SingleComm comm;
    Trainer t(cfg, *step, comm);
    RunLimits lim;
    lim.max_steps = max_steps;
    lim.checkpoint_every = checkpoint_every;
    t.run(tl, &el, start, lim, hooks);
    return read_checkpoint(out);
}

void require_same(const Checkpoint& a, const Checkpoint& b, const std::string& what)
{
    BOOST_TEST_CONTEXT(what)
    {
        BOOST_TEST(a.state.step == b.state.step);
        BOOST_TEST(a.state.epoch == b.state.epoch);
        BOOST_TEST(a.state.step_in_epoch == b.state.step_in_epoch);
        BOOST_TEST(a.opt_steps == b.opt_steps);
        // Bitwise: compare the bytes, so -0.0 vs 0.0 or NaN payloads would count as different.
        auto same = [](const std::vector<float>& x, const std::vector<float>& y) {
            return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
        };
        BOOST_TEST(same(a.params, b.params), "parameters differ");
        BOOST_TEST(same(a.m, b.m), "optimizer m differs");
        BOOST_TEST(same(a.v, b.v), "optimizer v differs");
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(same_seed_gives_identical_checkpoints)
{
    for (const OptKind kind : {OptKind::adam, OptKind::sgd}) {
        const std::string n = enum_name(kind);
        const Checkpoint a = train(base_config(kind), scratch().path("det_a_" + n + ".h5"));
        const Checkpoint b = train(base_config(kind), scratch().path("det_b_" + n + ".h5"));
        BOOST_TEST(a.state.step == 96);
        BOOST_TEST(a.state.epoch == 3);
        require_same(a, b, n + ": two runs with the same seed");
        TrainConfig other = base_config(kind);
        other.seed = 12;
        const Checkpoint c = train(other, scratch().path("det_c_" + n + ".h5"));
        BOOST_TEST(std::memcmp(a.params.data(), c.params.data(), a.params.size() * sizeof(float)) != 0);
    }
}

BOOST_AUTO_TEST_CASE(resume_is_exact)
{
    for (const OptKind kind : {OptKind::adamw, OptKind::sgd}) {
        const std::string n = enum_name(kind);
        const Checkpoint full = train(base_config(kind), scratch().path("full_" + n + ".h5"));
        // 20: inside epoch 0; 32: exactly at the first epoch's end; 45: inside epoch 1 after
        // crossing a boundary; 95: just before the end (the last step has a 16-row batch).
        for (const std::int64_t k : {20, 32, 45, 95}) {
            const std::string part = scratch().path("part_" + n + std::to_string(k) + ".h5");
            const Checkpoint stopped = train(base_config(kind), part, k);
            BOOST_TEST(stopped.state.step == k);
            BOOST_TEST(stopped.state.epoch == k / 32);
            BOOST_TEST(stopped.state.step_in_epoch == k % 32);
            const Checkpoint resumed =
                train(base_config(kind), scratch().path("resumed_" + n + std::to_string(k) + ".h5"), 0, part);
            require_same(full, resumed, n + ": resumed at step " + std::to_string(k));
        }
    }
}

BOOST_AUTO_TEST_CASE(resumed_epoch_reports_the_same_metrics)
{
    // The epoch's running loss sum is part of the state, so a resumed epoch reports the same
    // train loss (summed in a different grouping: equal to double rounding), and the same test
    // metrics (same parameters).
    const TrainConfig cfg = base_config(OptKind::adam);
    std::vector<EpochReport> full, second;
    train(cfg, scratch().path("loss_full.h5"), 0, "", &full);
    train(cfg, scratch().path("loss_part.h5"), 40);
    train(cfg, scratch().path("loss_resumed.h5"), 0, scratch().path("loss_part.h5"), &second);
    BOOST_TEST_REQUIRE(full.size() == 3u);
    BOOST_TEST_REQUIRE(second.size() == 2u);
    for (int e = 0; e < 2; ++e) {
        BOOST_TEST(second[e].epoch == full[e + 1].epoch);
        BOOST_TEST(std::fabs(second[e].train_loss - full[e + 1].train_loss) <= 1e-12 * full[e + 1].train_loss);
        BOOST_TEST(second[e].test_loss == full[e + 1].test_loss);
        BOOST_TEST(second[e].test_acc == full[e + 1].test_acc);
    }
}

BOOST_AUTO_TEST_CASE(bad_checkpoints_are_refused)
{
    const std::string good = scratch().path("good.h5");
    TrainConfig cfg = base_config(OptKind::adam);
    cfg.epochs = 1;
    train(cfg, good);
    for (const auto& e : fs::directory_iterator(fs::path(good).parent_path())) // no temporary left
        BOOST_TEST(e.path().filename().string().rfind("good.h5.tmp.", 0) != 0, "left over: " << e.path());
    auto message_of = [](const std::string& path) {
        try {
            read_checkpoint(path);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    // Truncated (a copy cut in half, as a crash without the atomic rename would leave it).
    const std::string cut = scratch().path("cut.h5");
    fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, fs::file_size(good) / 2);
    const std::string m1 = message_of(cut);
    BOOST_TEST_MESSAGE("truncated: " << m1);
    BOOST_TEST(m1.find(cut) != std::string::npos);
    BOOST_TEST(m1 != "no error");
    // A weight changed behind the writer's back: the checksum notices.
    const std::string bent = scratch().path("bent.h5");
    fs::copy_file(good, bent, fs::copy_options::overwrite_existing);
    {
        h5::Handle f = h5::open_rw(bent);
        h5::Handle ds = h5::open_dataset(f, "params/layer1/bias");
        const std::vector<float> zeros(16, 0.25f);
        H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()));
    }
    const std::string m2 = message_of(bent);
    BOOST_TEST_MESSAGE("modified: " << m2);
    BOOST_TEST(m2.find("checksum") != std::string::npos);
    // Not a checkpoint at all (a dataset file).
    BOOST_TEST(message_of(scratch().data).find("not an ompml checkpoint") != std::string::npos);
    BOOST_TEST(message_of(scratch().path("missing.h5")).find("no such file") != std::string::npos);
    // A failed write leaves nothing behind.
    const Checkpoint ck = read_checkpoint(good);
    BOOST_CHECK_THROW(write_checkpoint(scratch().path("no/such/dir/x.h5"), ck), Error);
}

std::string bytes_of(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Trains with an absurd learning rate until the loss overflows; returns the error message.
std::string diverge(const std::string& out, std::int64_t checkpoint_every)
{
    TrainConfig cfg = base_config(OptKind::sgd);
    cfg.opt.lr = 1e30f;
    try {
        train(cfg, out, 0, "", nullptr, checkpoint_every);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

// The step a non-finite message names: "step 2: loss is nan ..." -> 2 (-1 if none).
std::int64_t step_named(const std::string& msg)
{
    if (msg.rfind("step ", 0) != 0) return -1;
    return std::stoll(msg.substr(5));
}

BOOST_AUTO_TEST_CASE(diverging_run_stops_naming_the_step_and_keeps_the_checkpoint)
{
    // A good checkpoint, then a run that diverges (lr 1e30) writing to the same file.
    const std::string f = scratch().path("diverge.h5");
    TrainConfig cfg = base_config(OptKind::sgd);
    cfg.epochs = 1;
    train(cfg, f);
    const std::string good = bytes_of(f);

    // Checkpoints only at the end: the run stops first, and the file is byte for byte the same.
    const std::string m1 = diverge(f, 0);
    BOOST_TEST_MESSAGE("diverged: " << m1);
    BOOST_TEST(step_named(m1) >= 1, m1);
    BOOST_TEST((m1.find(": loss is ") != std::string::npos || m1.find(": gradient norm is ") != std::string::npos), m1);
    BOOST_TEST(m1.find("(non-finite)") != std::string::npos, m1);
    BOOST_TEST(bytes_of(f) == good, "the checkpoint changed");
    BOOST_TEST(!fs::exists(f + ".prev"));

    // Checkpoints every step: the last one written is the (finite) state before the failing
    // step, and the rotation kept the good file as .prev.
    const std::string m2 = diverge(f, 1);
    const std::int64_t bad_step = step_named(m2);
    BOOST_TEST_REQUIRE(bad_step >= 2, m2);
    BOOST_TEST(read_checkpoint(f).state.step == bad_step - 1);
    // (.prev: the step before that, or the good 1-epoch file, 32 steps, when step 1 was the last good one)
    BOOST_TEST(read_checkpoint(f + ".prev").state.step == (bad_step == 2 ? 32 : bad_step - 2));
}

BOOST_AUTO_TEST_CASE(metrics_lines_are_json)
{
    const std::string p = scratch().path("m.jsonl");
    {
        MetricsLog log(p, false);
        log.write(MetricsRecord{1, 469, 0.5, 0.45, 0.84, 1e-3, 8.5, 7000.0, {}});
        log.write(MetricsRecord{2, 938, 0.4, std::nan(""), 0.86, 1e-3, 17.0, 7100.0, {}});
    }
    std::ifstream in(p);
    std::string l1, l2;
    std::getline(in, l1);
    std::getline(in, l2);
    BOOST_TEST(l1 ==
               "{\"epoch\": 1, \"step\": 469, \"train_loss\": 0.5, \"test_loss\": 0.45, "
               "\"test_acc\": 0.84, \"lr\": 0.001, \"seconds\": 8.5, \"samples_per_s\": 7000}");
    BOOST_TEST(l2.find("\"test_loss\": null") != std::string::npos);
}
