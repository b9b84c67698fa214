// ompml-train's steps before the loop (train_setup.hpp).
#include "app/train_setup.hpp"

#include "app/cli.hpp"
#include "app/test_env.hpp"
#include "core/check.hpp"
#include "core/trace.hpp"
#include "io/fingerprint.hpp"
#include "io/output_target.hpp"
#include "nn/settings.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace ompml {
namespace {

// "train 1500x24 uint8": a split's shape and dtype, for the data fingerprint.
std::string split_shape(const char* name, const SplitInfo& s, std::uint64_t features)
{
    return std::string(name) + " " + std::to_string(s.samples) + "x" + std::to_string(features) + " " +
        h5::dtype_name(s.image_dtype);
}

// Rules between flags; every rank holds the same flags, so the error is collective.
void check_rules(const TrainFlags& f)
{
    const TrainOptions& o = f.opt;
    if (o.keep_best && o.checkpoint.empty())
        throw CollectiveError("--keep-best needs --checkpoint FILE (the best is kept beside it)", -1, 0);
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
    app.get_option("--backend")->description(cli::backend_help(available_backends()));
    app.add_option("--write-config", out.write_config,
                   "write the settings this command line resolves to (defaults and a resumed checkpoint's "
                   "included) to this TOML file and stop, without training; rerun with --config FILE")
        ->configurable(false);
    if (const auto rc = cli::parse(app, argc, argv, "ompml-train", print)) return rc;
    flags.apply();
    out.given = flags.given();
    // PyTorch's defaults: AdamW decays by 0.01 unless told otherwise, the others not at all.
    if (!flags.given("weight_decay") && out.cfg.opt.kind == OptKind::adamw) out.cfg.opt.weight_decay = 0.01f;
    check_rules(out);
    return std::nullopt;
}

std::string best_checkpoint_path(const std::string& checkpoint)
{
    const std::string ext = ".h5";
    if (checkpoint.size() > ext.size() && checkpoint.compare(checkpoint.size() - ext.size(), ext.size(), ext) == 0)
        return checkpoint.substr(0, checkpoint.size() - ext.size()) + ".best" + ext;
    return checkpoint + ".best";
}

void check_output_flags(const MpiSession& mpi, const TrainOptions& opt)
{
    collective_try(mpi, [&] {
        if (!mpi.root()) return;
        if (!opt.checkpoint.empty()) {
            try {
                check_checkpoint_target(opt.checkpoint);
            } catch (const Error& e) { // "checkpoint F ..." -> "--checkpoint F ..."
                throw Error(std::string("--") + e.what());
            }
        }
        if (opt.keep_best) {
            try {
                check_checkpoint_target(best_checkpoint_path(opt.checkpoint), false);
            } catch (const Error& e) {
                throw Error(std::string("--keep-best: ") + e.what());
            }
        }
        // A symbolic link there is the log's own business (io/metrics.hpp): a new log replaces
        // it, a resumed one refuses to append through it.
        std::error_code ec;
        if (!opt.metrics.empty() && !std::filesystem::is_symlink(opt.metrics, ec))
            check_output(opt.metrics, FileKind::metrics, "--metrics",
                         "choose another --metrics path or move the file away");
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
        LoaderOptions vo = lo; // validation: every epoch, in file order
        vo.global_batch = cfg.eval_batch;
        vo.shuffle = false;
        if (cfg.val_fraction > 0) { // held out of the training split
            const DatasetInfo info = inspect_dataset(path);
            if (info.has_val)
                throw Error("--val-fraction " + value_text(cfg.val_fraction) + ": " + path +
                            " has its own /val split, which is used without it; drop --val-fraction");
            vo.rows = validation_rows(info.train.samples, cfg.val_fraction, cfg.seed);
            lo.rows = training_rows(info.train.samples, vo.rows);
            d.val_source = "--val-fraction " + value_text(cfg.val_fraction) + " of /train";
        }
        d.train = std::make_unique<Loader>(be, lo);
        if (d.train->dataset().has_val) {
            vo.split = Split::val;
            d.val_source = "/val";
        }
        if (!d.val_source.empty()) d.val = std::make_unique<Loader>(be, vo);
        LoaderOptions to = lo;
        to.split = Split::test;
        to.global_batch = cfg.eval_batch;
        to.shuffle = false;
        to.rows.clear();
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
    ContentHash content;
    content.add(d.train->content_hash());
    content.add(d.test->content_hash());
    if (d.val) content.add(d.val->content_hash());
    d.fingerprint = split_shape("train", ds.train, ds.features) + ", " + split_shape("test", ds.test, ds.features) +
        (ds.has_val ? ", " + split_shape("val", ds.val, ds.features) : std::string()) + ", classes " +
        std::to_string(ds.classes) + ", content " + hex64(content.value());
    if (opt.keep_best && !d.val)
        throw CollectiveError("--keep-best needs a validation split: --val-fraction F, or /val in " + opt.data, -1, 0);
    return d;
}

void agree_on_data(const MpiSession& mpi, const TrainOptions& opt, const TrainData& data)
{
    if (mpi.size() == 1) return;
    try {
        agree(mpi.comm(), {{"data", data.fingerprint}}); // one small allreduce when all agree
    } catch (const CollectiveError&) {
        // Rank 0 names the ranks, their files and fingerprints, grouped; rank 0's message is
        // the one printed (run_on_every_rank), the others throw a shorter one.
        const std::vector<std::string> all =
            gather_strings(mpi.comm(), test_env::per_rank_path(opt.data, mpi.rank()) + " (" + data.fingerprint + ")");
        std::string msg = "the ranks opened different data:";
        std::vector<std::pair<std::string, std::string>> groups; // (what, ranks)
        for (std::size_t r = 0; r < all.size(); ++r) {
            auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == all[r]; });
            if (g == groups.end()) g = groups.insert(groups.end(), {all[r], ""});
            g->second += (g->second.empty() ? "" : ", ") + std::to_string(r);
        }
        for (std::size_t i = 0; i < groups.size(); ++i)
            msg += std::string(i ? ";" : "") +
                (groups[i].second.find(',') == std::string::npos ? " rank " : " ranks ") + groups[i].second + ": " +
                groups[i].first;
        throw CollectiveError(msg + ". Every rank must read the same dataset (a stale copy on one node?)", -1, 0);
    }
}

void fix_schedule(const MpiSession& mpi, TrainConfig& cfg, const TrainOptions& opt, const TrainData& data,
                  const ResumePoint& resume)
{
    const std::int64_t spe = data.train->steps_per_epoch();
    if (!resume.ck) {
        if (opt.step_epochs > 0) cfg.sched.step_size = static_cast<std::int64_t>(opt.step_epochs) * spe;
        cfg.sched = Trainer::resolve_schedule(cfg, spe);
    } else if (const std::int64_t horizon = static_cast<std::int64_t>(cfg.epochs) * spe;
               cfg.sched.kind == SchedKind::cosine && cfg.sched.total_steps != horizon) {
        // --epochs moved the run's end: the old cosine would train every step past its end at
        // lr 0. The schedule takes the new length; the lr from the resumed step on follows it.
        const ScheduleConfig old = cfg.sched;
        cfg.sched.total_steps = horizon;
        const std::int64_t at = resume.ck->state.step;
        if (mpi.root()) {
            std::printf("ompml-train: --epochs %d: the cosine schedule now ends at step %lld instead of %lld; "
                        "the run resumes at step %lld with lr %.4g (the old schedule's: %.4g)\n",
                        cfg.epochs, static_cast<long long>(horizon), static_cast<long long>(old.total_steps),
                        static_cast<long long>(at), static_cast<double>(scheduled_lr(cfg.sched, cfg.opt.lr, at)),
                        static_cast<double>(scheduled_lr(old, cfg.opt.lr, at)));
            std::fflush(stdout);
        }
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
    TraceInfo info{.program = "ompml-train",
                   .params = params,
                   .provenance =
                       provenance("ompml-train", mpi.processor(), std::string(be.name()) + " on " + be.device())};
    parse_trace_steps(opt.trace_steps, &info.first_step, &info.last_step);
    auto t = std::make_unique<TraceFile>(mpi, opt.trace, info);
    trace::set_device_sync([&be] { be.synchronize(); });
    return t;
}

} // namespace ompml
