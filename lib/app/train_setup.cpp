// ompml-train's steps before the loop (train_setup.hpp).
#include "app/train_setup.hpp"

#include "app/cli.hpp"
#include "app/test_env.hpp"
#include "core/check.hpp"
#include "core/trace.hpp"
#include "nn/settings.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace ompml {
namespace {

std::string joined(const std::vector<std::string>& v, const char* sep)
{
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

// Rules between flags; every rank holds the same flags, so the error is collective.
void check_rules(const TrainFlags& f)
{
    const TrainOptions& o = f.opt;
    if (o.checkpoint_every > 0 && o.checkpoint.empty())
        throw CollectiveError("--checkpoint-every " + std::to_string(o.checkpoint_every) + " needs --checkpoint FILE",
                              -1, 0);
    if (f.cfg.sched.step_size > 0 && o.step_epochs > 0)
        throw CollectiveError("--step-size and --step-epochs are exclusive", -1, 0);
    if (o.resume == "auto" && o.checkpoint.empty())
        throw CollectiveError("--resume auto needs --checkpoint FILE (it resumes from FILE or FILE.prev)", -1, 0);
    if (!o.trace_steps.empty() && o.trace.empty())
        throw CollectiveError("--trace-steps " + o.trace_steps + " needs --trace FILE", -1, 0);
    std::int64_t first = 0, last = 0;
    try {
        parse_trace_steps(o.trace_steps, &first, &last);
    } catch (const Error& e) {
        throw CollectiveError(e.what(), -1, 0);
    }
}

// --resume auto: FILE, else FILE.prev, the first that exists and reads; fresh when neither is
// there. A file that is there but unreadable is a warning; both unreadable, an error.
ResumePoint resume_auto(const MpiSession& mpi, const std::string& file)
{
    ResumePoint r;
    const std::vector<std::string> candidates{file, file + ".prev"};
    bool any_present = false;
    for (const std::string& c : candidates) {
        std::error_code ec;
        if (!any_rank(mpi.comm(), std::filesystem::exists(c, ec))) continue;
        any_present = true;
        try {
            collective_try(mpi, [&] { r.ck = read_checkpoint(c); });
            r.path = c;
            break;
        } catch (const Error& e) { // every rank: a CollectiveError, or the one rank's Error
            r.ck.reset();
            if (mpi.root())
                std::fprintf(stderr, "ompml-train: warning: --resume auto: rejected %s: %s\n", c.c_str(), e.what());
        }
    }
    if (!r.ck && any_present)
        throw CollectiveError("--resume auto: no valid checkpoint: " + candidates[0] + " and " + candidates[1] +
                                  " are both unusable (see the warnings above)",
                              -1, 0);
    if (mpi.root()) {
        if (r.ck)
            std::printf("ompml-train: --resume auto: resuming from %s\n", r.path.c_str());
        else
            std::printf("ompml-train: --resume auto: no checkpoint at %s or %s: starting fresh\n",
                        candidates[0].c_str(), candidates[1].c_str());
        std::fflush(stdout);
    }
    return r;
}

} // namespace

std::optional<int> parse_train_flags(int argc, char** argv, bool print, TrainFlags& out)
{
    CLI::App app{"ompml-train: train an MLP with OpenMP target offload kernels"};
    cli::SettingFlags flags;
    flags.add(app, out.opt, [](auto&& f) { for_each_train_option(f); });
    flags.add(app, out.cfg, [](auto&& f) { for_each_train_setting(f); });
    app.get_option("--backend")->description("kernel backend: " + joined(available_backends(), " | "));
    if (const auto rc = cli::parse(app, argc, argv, "ompml-train", print)) return rc;
    flags.apply();
    out.given = flags.given();
    // PyTorch's defaults: AdamW decays by 0.01 unless told otherwise, the others not at all.
    if (!flags.given("weight_decay") && out.cfg.opt.kind == OptKind::adamw) out.cfg.opt.weight_decay = 0.01f;
    check_rules(out);
    return std::nullopt;
}

void check_checkpoint_flag(const MpiSession& mpi, const TrainOptions& opt)
{
    collective_try(mpi, [&] {
        if (!mpi.root() || opt.checkpoint.empty()) return;
        try {
            check_checkpoint_target(opt.checkpoint);
        } catch (const Error& e) { // "checkpoint F ..." -> "--checkpoint F ..."
            throw Error(std::string("--") + e.what());
        }
    });
}

ResumePoint choose_resume(const MpiSession& mpi, const TrainOptions& opt)
{
    if (opt.resume == "auto") return resume_auto(mpi, opt.checkpoint);
    ResumePoint r;
    if (opt.resume.empty()) return r;
    collective_try(mpi, [&] { r.ck = read_checkpoint(opt.resume); });
    r.path = opt.resume;
    return r;
}

TrainConfig resolve_config(TrainFlags& flags, const ResumePoint& resume)
{
    if (!resume.ck) return flags.cfg;
    TrainConfig cfg = resume.ck->config;
    for_each_train_setting([&](const Spec& s, auto field) {
        if (s.flag == nullptr || flags.given.count(s.key) == 0) return;
        if (s.store == Store::may_change) {
            field(cfg) = field(flags.cfg);
        } else if (value_text(field(flags.cfg), true) != value_text(field(cfg), true)) {
            throw CollectiveError(std::string(s.flag) + " " + value_text(field(flags.cfg)) +
                                      " conflicts with the checkpoint's " + value_text(field(cfg)) +
                                      " (a resumed run keeps its settings)",
                                  -1, 0);
        }
    });
    if (flags.given.count("data") == 0) flags.opt.data = resume.ck->data.path;
    return cfg;
}

TrainData open_data(const MpiSession& mpi, Backend& be, const TrainOptions& opt, const TrainConfig& cfg,
                    const ResumePoint& resume)
{
    const std::string path = test_env::per_rank_path(opt.data, mpi.rank());
    TrainData d;
    collective_try(mpi, [&] {
        LoaderOptions lo;
        lo.path = path;
        lo.global_batch = cfg.batch;
        lo.rank = mpi.rank();
        lo.nranks = mpi.size();
        lo.seed = cfg.seed;
        lo.streaming = opt.streaming;
        // Streaming reads are collective over all ranks where possible (io/loader.hpp); every
        // rank must choose alike, so the choice is a flag the ranks agree on.
        lo.comm = mpi.comm();
        lo.reads = opt.streaming_reads;
        d.train = std::make_unique<Loader>(be, lo);
        LoaderOptions to = lo;
        to.split = Split::test;
        to.global_batch = cfg.eval_batch;
        to.shuffle = false;
        d.test = std::make_unique<Loader>(be, to);
        const DatasetInfo& ds = d.train->dataset();
        require_features(ds, static_cast<std::uint64_t>(cfg.model.layers.front()));
        if (ds.classes != cfg.model.layers.back())
            throw Error("--layers " + layers_string(cfg.model.layers) + ": the last width " +
                        std::to_string(cfg.model.layers.back()) + " must equal the dataset's " +
                        std::to_string(ds.classes) + " classes (" + path + ")");
        if (resume.ck && resume.ck->data.features != ds.features)
            throw Error("--data " + path + ": " + std::to_string(ds.features) +
                        " features, the checkpoint was trained on " + std::to_string(resume.ck->data.features));
    });
    const DatasetInfo& ds = d.train->dataset();
    d.desc = DataDesc{opt.data, ds.features, ds.classes, d.train->samples(), d.test->samples()};
    return d;
}

void fix_schedule(TrainConfig& cfg, const TrainOptions& opt, const TrainData& data, const ResumePoint& resume)
{
    const std::int64_t spe = data.train->steps_per_epoch();
    if (!resume.ck) {
        if (opt.step_epochs > 0) cfg.sched.step_size = static_cast<std::int64_t>(opt.step_epochs) * spe;
        cfg.sched = Trainer::resolve_schedule(cfg, spe);
    }
    if (cfg.sched.kind == SchedKind::step && cfg.sched.step_size <= 0)
        throw CollectiveError("--schedule step needs --step-size N or --step-epochs N", -1, 0);
}

void agree_on_run(const MpiSession& mpi, const TrainConfig& cfg, const TrainOptions& opt, const TrainData& data,
                  const ResumePoint& resume)
{
    try { // every rank holds the same settings and rank count: the same answer everywhere
        check_reproducible(cfg.reproducible_ranks, mpi.size(), opt.grad_dtype);
    } catch (const Error& e) {
        throw CollectiveError(e.what(), -1, 0);
    }
    if (mpi.size() == 1) return;
    Config c;
    for_each_train_setting([&](const Spec& s, auto field) {
        if (s.agree) c.emplace_back(s.key, value_text(field(cfg), true));
    });
    for_each_train_option([&](const Spec& s, auto field) {
        if (s.agree) c.emplace_back(s.key, value_text(field(opt), true));
    });
    const DataDesc& d = data.desc;
    c.emplace_back("dataset shape",
                   "features " + std::to_string(d.features) + " classes " + std::to_string(d.classes) + " train " +
                       std::to_string(d.train_samples) + " test " + std::to_string(d.test_samples));
    c.emplace_back("resume",
                   resume.ck ? resume.path + " at step " + std::to_string(resume.ck->state.step)
                             : std::string("fresh start"));
    agree(mpi.comm(), c);
}

ParallelStep build_step(const MpiSession& mpi, Backend& be, const TrainConfig& cfg, const TrainOptions& opt,
                        const TrainData& data, ResumePoint& resume)
{
    GradSumOptions gso;
    gso.bucket_mb = opt.bucket_mb;
    gso.force_staging = opt.mpi_staging;
    gso.gpu_memory = be.on_gpu();
    gso.transport = opt.grad_transport;
    gso.mpi_fp32 = opt.mpi_fp32_sum;
    // Every rank takes the same transport decision, so an error ("shm is not possible here")
    // is the same everywhere.
    ParallelStep p;
    collective_try(mpi, [&] {
        p = make_parallel_step(mpi.comm(), be, cfg, std::max(data.train->max_rows(), data.test->max_rows()),
                               opt.grad_dtype, gso);
        if (resume.ck)
            restore_checkpoint(*resume.ck, p.step->model(), &p.step->optimizer());
        else
            p.step->model().init_params(cfg.seed);
    });
    if (resume.ck) resume.ck->params = resume.ck->m = resume.ck->v = {}; // the host copy can be large
    // Every rank computed the same values (same seed or the same checkpoint, agreed on); the
    // broadcast makes "identical" hold by construction, whatever the rank's history.
    Model& model = p.step->model();
    broadcast(mpi.comm(), be.memory(), model.params(), model.num_params());
    model.params_changed();
    return p;
}

std::unique_ptr<TraceFile> open_trace(const MpiSession& mpi, const TrainOptions& opt, const Backend& be,
                                      std::size_t params)
{
    if (opt.trace.empty()) return nullptr;
    TraceInfo info{.program = "ompml-train", .params = params};
    parse_trace_steps(opt.trace_steps, &info.first_step, &info.last_step);
    auto t = std::make_unique<TraceFile>(mpi, opt.trace, info);
    trace::set_device_sync([&be] { be.synchronize(); });
    return t;
}

} // namespace ompml
