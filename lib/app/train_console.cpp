// ompml-train's console (train_console.hpp).
#include "app/train_console.hpp"

#include "app/stop_signal.hpp"
#include "backend/subnormals.hpp"
#include "nn/settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ompml {
namespace {

std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// "1 rank", "2 ranks".
std::string count_text(long long n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

std::string duration(double s)
{
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 120) return fmt("%.0f s", s);
    if (s < 7200) return fmt("%.1f min", s / 60);
    return fmt("%.1f h", s / 3600);
}

// Whether a run option means anything for this run (the report shows only those): how ranks
// sum gradients needs ranks, buckets need MPI, the read mode needs --streaming on several ranks.
bool option_applies(std::string_view key, const TrainOptions& opt, int ranks, std::string_view transport)
{
    if (key == "bucket_mb" || key == "mpi_staging") return transport == "mpi";
    if (key == "grad_transport" || key == "grad_dtype") return ranks > 1;
    if (key == "streaming_reads") return opt.streaming && ranks > 1;
    return true;
}

// The settings of one report group that apply, from both tables: "lr 0.001, weight_decay 0,
// ..." (a setting named like its group shows its value alone: "optimizer adam").
std::string group_text(const char* group, const TrainConfig& cfg, const TrainOptions& opt, int ranks,
                       std::string_view transport)
{
    std::string s;
    const auto add = [&](const Spec& spec, const std::string& value) {
        if (std::string_view(spec.group) != group) return;
        s += (s.empty() ? "" : ", ") + (std::string_view(spec.key) == group ? value : spec.key + (" " + value));
    };
    for_each_train_setting([&](const Spec& spec, auto field) {
        if (setting_applies(spec.key, cfg)) add(spec, value_text(field(cfg)));
    });
    for_each_train_option([&](const Spec& spec, auto field) {
        if (option_applies(spec.key, opt, ranks, transport)) add(spec, value_text(field(opt)));
    });
    return s;
}

} // namespace

TrainConsole::TrainConsole(const MpiSession& mpi, const TrainRun& run) : mpi_(mpi), run_(run)
{
    // The peak ompml-bench uses too (the CUDA device's attributes), where the backend runs on a GPU.
    if (run.be->on_gpu()) peak_gflops_ = gpu_peak().gflops * mpi.size();
    const std::int64_t all = static_cast<std::int64_t>(run.cfg.epochs) * run.data.train->steps_per_epoch();
    last_step_ = run.opt.max_steps > 0 ? std::min(run.opt.max_steps, all) : all;
    // Live progress only for an interactive single process: mpirun gives every rank a pty even
    // when its own output goes to a file, which would fill logs with carriage returns. Elsewhere
    // (mpirun, sbatch, a pipe), or when --log-every asks, plain lines that a log keeps.
    live_ = mpi.root() && mpi.size() == 1 && std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && isatty(fileno(stdout)) &&
        run.opt.log_every == 0;
    plain_ = mpi.root() && !live_;
}

void TrainConsole::print_start()
{
    const Backend& be = *run_.be;
    const TrainOptions& opt = run_.opt;
    const TrainConfig& cfg = run_.cfg;
    const TrainData& data = run_.data;
    const Step& step = *run_.step.step;
    double first_on_node = mpi_.local_rank() == 0 ? 1.0 : 0.0;
    allreduce_sum(mpi_.comm(), &first_on_node, 1);
    const std::vector<std::string> where =
        gather_strings(mpi_.comm(), mpi_.processor() + ", " + run_.binding.describe());
    if (!mpi_.root()) return;
    const std::string subnormals = be.on_gpu() ? "" : ", subnormals " + subnormals_text(current_subnormals());
    std::printf("ompml-train: backend %s on %s%s\n", be.name(), be.device().c_str(), subnormals.c_str());
    const std::string buckets = std::string_view(step.sum_kind()) != "mpi" ? std::string()
        : opt.bucket_mb > 0                                                ? ", bucket " + fmt("%g MB", opt.bucket_mb)
                                                                           : std::string(", one bucket per step");
    std::printf("  mpi       %s on %s, gradients: %s%s\n", count_text(mpi_.size(), "rank").c_str(),
                count_text(static_cast<int>(first_on_node), "node").c_str(), step.sum_describe().c_str(),
                buckets.c_str());
    if (!run_.step.plan->note().empty()) std::printf("  mpi       %s\n", run_.step.plan->note().c_str());
    const int shown = std::min(mpi_.size(), 8);
    for (int r = 0; r < shown; ++r) std::printf("  rank %-4d %s\n", r, where[static_cast<std::size_t>(r)].c_str());
    if (shown < mpi_.size()) std::printf("  ... (%d more ranks)\n", mpi_.size() - shown);
    const DataDesc& d = data.desc;
    const std::string val =
        data.val ? ", val " + std::to_string(data.val->samples()) + " (" + data.val_source + ")" : std::string();
    std::printf("  data      %s: train %llu%s, test %llu, features %llu, classes %d%s\n", d.path.c_str(),
                static_cast<unsigned long long>(d.train_samples), val.c_str(),
                static_cast<unsigned long long>(d.test_samples), static_cast<unsigned long long>(d.features), d.classes,
                opt.streaming ? (" (streaming, " + data.train->read_mode() + ")").c_str() : "");
    std::printf("  model     %s; %zu parameters\n", group_text("model", cfg, opt, mpi_.size(), step.sum_kind()).c_str(),
                run_.step.step->model().num_params());
    std::printf("  optimizer %s\n", group_text("optimizer", cfg, opt, mpi_.size(), step.sum_kind()).c_str());
    std::printf("  schedule  %s\n", group_text("schedule", cfg, opt, mpi_.size(), step.sum_kind()).c_str());
    std::printf("  run       %s; %lld steps/epoch, %d rows per rank\n",
                group_text("run", cfg, opt, mpi_.size(), step.sum_kind()).c_str(),
                static_cast<long long>(data.train->steps_per_epoch()), data.train->max_rows());
    if (mpi_.size() > 1) // one rank sums nothing
        std::printf("  gradients %s\n", group_text("gradients", cfg, opt, mpi_.size(), step.sum_kind()).c_str());
    const TrainState start = run_.resume.start();
    if (!run_.resume.path.empty())
        std::printf("  resume    %s at step %lld (epoch %lld, step %lld in it)\n", run_.resume.path.c_str(),
                    static_cast<long long>(start.step), static_cast<long long>(start.epoch),
                    static_cast<long long>(start.step_in_epoch));
    if (run_.trace != nullptr)
        std::printf("  trace     %s, steps %s\n", run_.trace->path().c_str(),
                    opt.trace_steps.empty() ? "all" : opt.trace_steps.c_str());
    if (!opt.checkpoint.empty())
        std::printf("  checkpoint %s%s (previous kept as %s.prev)\n", opt.checkpoint.c_str(),
                    opt.checkpoint_every > 0
                        ? (" every " + std::to_string(opt.checkpoint_every) + " steps and at the end").c_str()
                        : " at the end",
                    opt.checkpoint.c_str());
    std::fflush(stdout);
}

void TrainConsole::on_step(const StepReport& r)
{
    if (plain_) {
        const std::int64_t every = run_.opt.log_every;
        if (every > 0 ? r.step % every != 0 : since_line_.seconds() < kLogSeconds) return;
        since_line_.restart();
        const double sps = r.epoch_seconds > 0 ? r.epoch_samples / r.epoch_seconds : 0.0;
        std::printf("step %lld/%lld epoch %lld/%d (step %lld/%lld in it) loss %.4f lr %.3g %.0f samples/s %s ETA %s\n",
                    static_cast<long long>(r.step), static_cast<long long>(last_step_),
                    static_cast<long long>(r.epoch + 1), run_.cfg.epochs, static_cast<long long>(r.step_in_epoch),
                    static_cast<long long>(r.steps_per_epoch), r.loss, static_cast<double>(r.lr), sps,
                    flops_text(sps).c_str(), duration(eta_seconds(r.step, sps)).c_str());
        std::fflush(stdout);
        return;
    }
    if (!live_ || r.epoch_seconds - last_live_ < 0.25) return;
    last_live_ = r.epoch_seconds;
    const double sps = r.epoch_seconds > 0 ? r.epoch_samples / r.epoch_seconds : 0.0;
    std::printf("\r  epoch %lld/%d step %lld/%lld loss %.4f %.0f samples/s %s ETA %s   ",
                static_cast<long long>(r.epoch + 1), run_.cfg.epochs, static_cast<long long>(r.step_in_epoch),
                static_cast<long long>(r.steps_per_epoch), r.loss, sps, flops_text(sps).c_str(),
                duration(eta_seconds(r.step, sps)).c_str());
    std::fflush(stdout);
}

void TrainConsole::on_epoch(const EpochReport& r, double comm_s)
{
    rate_ = r.samples_per_s;
    // Communication against the rest of this epoch's training time (evaluation excluded).
    const double ep_compute = std::max(0.0, r.seconds - comm_s);
    if (!mpi_.root()) return;
    if (live_) std::printf("\r%100s\r", "");
    const char* eval = run_.data.val ? "val" : "test"; // what the loop evaluated
    std::printf("epoch %lld/%d step %lld train_loss %.4f %s_loss %.4f %s_acc %.4f lr %.3g %.0f samples/s "
                "%s compute %.2f s comm %.2f s ETA %s\n",
                static_cast<long long>(r.epoch), run_.cfg.epochs, static_cast<long long>(r.step), r.train_loss, eval,
                r.test_loss, eval, r.test_acc, static_cast<double>(r.lr), r.samples_per_s,
                flops_text(r.samples_per_s).c_str(), ep_compute, comm_s, duration(eta_seconds(r.step, rate_)).c_str());
    std::fflush(stdout);
    last_live_ = -1.0;
}

double TrainConsole::gflops(double samples_per_s) const
{
    return samples_per_s * run_.step.step->model().train_flops_per_row() / 1e9;
}

std::string TrainConsole::flops_text(double samples_per_s) const
{
    const double g = gflops(samples_per_s);
    std::string s = fmt("%.1f GFLOP/s", g);
    if (peak_gflops_ > 0) s += fmt(" (%.1f%% of peak)", 100.0 * g / peak_gflops_);
    return s;
}

double TrainConsole::eta_seconds(std::int64_t step, double samples_per_s) const
{
    return samples_per_s > 0 ? static_cast<double>(last_step_ - step) * run_.cfg.batch / samples_per_s : NAN;
}

void TrainConsole::print_end(const TrainResult& res, double comm_s, const std::optional<EvalResult>& test,
                             double best_val_loss, std::int64_t best_epoch)
{
    if (!mpi_.root()) return;
    if (live_) std::printf("\r%100s\r", "");
    const std::int64_t steps = res.state.step - run_.resume.start().step;
    const GradSyncStats& gs = run_.step.step->sum_total();
    // This process's training time: whole epochs reported plus the unfinished part.
    const double trained = res.state.elapsed_s - run_.resume.start().elapsed_s;
    const double c = comm_s;
    if (steps > 0)
        std::printf("time: %lld steps in %.2f s: compute %.2f s, communication %.2f s (%.1f%%; exposed wait "
                    "%.2f s, staging copies %.2f s; %.2f ms/step), %s\n",
                    static_cast<long long>(steps), trained, std::max(0.0, trained - c), c,
                    trained > 0 ? 100.0 * c / trained : 0.0, gs.wait_s, gs.copy_s, 1e3 * c / steps,
                    count_text(mpi_.size(), "rank").c_str());
    if (res.interrupted) {
        std::printf("stopped by %s at step %lld: %s; exit %d (continue with --resume auto)\n",
                    stop_signal_name(stop_signal()), static_cast<long long>(res.state.step),
                    run_.opt.checkpoint.empty() ? "no --checkpoint given, nothing saved"
                                                : ("checkpoint " + run_.opt.checkpoint + " written").c_str(),
                    kExitCheckpointed);
    } else {
        // With a validation split, res.test is the validation's; test is the test split's, once.
        const std::string val =
            run_.data.val ? fmt(" val_acc %.4f", res.test.accuracy) + fmt(" val_loss %.4f", res.test.loss) : "";
        std::printf("final: test_acc %.4f test_loss %.4f%s epochs %lld steps %lld time %.1f s%s\n", test->accuracy,
                    test->loss, val.c_str(), static_cast<long long>(res.state.epoch),
                    static_cast<long long>(res.state.step), res.seconds,
                    res.stopped_early ? " (stopped by --max-steps)" : "");
        if (!run_.opt.checkpoint.empty()) std::printf("checkpoint: %s\n", run_.opt.checkpoint.c_str());
        if (best_epoch > 0)
            std::printf("best: %s (epoch %lld, val_loss %.4f)\n", best_checkpoint_path(run_.opt.checkpoint).c_str(),
                        static_cast<long long>(best_epoch), best_val_loss);
    }
    if (run_.trace != nullptr)
        std::printf("trace: %s (%zu events; tools/trace_report.py %s)\n", run_.trace->path().c_str(),
                    run_.trace->events(), run_.trace->path().c_str());
    std::fflush(stdout);
}

} // namespace ompml
