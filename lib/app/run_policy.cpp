// ompml-train's run policy (run_policy.hpp).
#include "app/run_policy.hpp"

#include "app/run_record.hpp"
#include "app/stop_signal.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace ompml {
namespace {

// A number, or null where there is none (NaN).
JsonRecord number_or_null(double v) { return std::isnan(v) ? JsonRecord(nullptr) : JsonRecord(v); }

} // namespace

RunPolicy::RunPolicy(const MpiSession& mpi, TrainRun& run, TrainConsole& console, Comm& comm)
    : mpi_(mpi), run_(run), console_(console), comm_(comm), test_(mpi.rank()), trained_s_(run.resume.start().elapsed_s),
      best_(run.resume.ck ? run.resume.ck->best_val_loss : NAN)
{
    if (mpi.root() && !run.opt.metrics.empty()) {
        metrics_ = std::make_unique<MetricsLog>(run.opt.metrics, !run.resume.path.empty());
        metrics_->write(header_record(mpi, run));
    }
}

Hooks RunPolicy::hooks()
{
    Hooks h;
    h.on_step = [this](const StepReport& r) { on_step(r); };
    h.on_epoch = [this](const EpochReport& r) { on_epoch(r); };
    h.on_checkpoint = [this](const TrainState& s) { on_checkpoint(s); };
    h.should_stop = [this](const TrainState& s) { return should_stop(s); };
    return h;
}

void RunPolicy::write_record(const JsonRecord& r)
{
    if (metrics_) metrics_->write(r);
}

void RunPolicy::on_step(const StepReport& r)
{
    test_.after_step(r.step);
    const std::int64_t every = run_.opt.metrics_every;
    if (every > 0 && !run_.opt.metrics.empty() && r.step % every == 0) {
        // The step's loss over the global batch: every rank joins this sum at the same steps.
        double sums[2] = {r.loss * r.rows, static_cast<double>(r.rows)};
        comm_.sum(sums, 2);
        JsonRecord m;
        m["record"] = "step";
        m["epoch"] = r.epoch;
        m["step"] = r.step;
        m["loss"] = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
        m["lr"] = json_float(r.lr);
        m["seconds"] = trained_s_ + r.epoch_seconds;
        m["samples_per_s"] = r.epoch_seconds > 0 ? r.epoch_samples / r.epoch_seconds : 0.0;
        write_record(m);
    }
    console_.on_step(r);
}

void RunPolicy::on_epoch(const EpochReport& r)
{
    const double comm = comm_seconds() - comm_at_epoch_; // this epoch's
    comm_at_epoch_ = comm_seconds();
    trained_s_ = r.total_seconds;
    JsonRecord m;
    m["record"] = "epoch";
    m["epoch"] = r.epoch;
    m["step"] = r.step;
    m["train_loss"] = r.train_loss;
    const bool val = run_.data.val != nullptr; // the loop evaluated validation, not test
    m[val ? "val_loss" : "test_loss"] = r.test_loss;
    m[val ? "val_acc" : "test_acc"] = r.test_acc;
    m["lr"] = json_float(r.lr);
    m["seconds"] = r.total_seconds;
    m["samples_per_s"] = r.samples_per_s;
    m["comm_s"] = comm;
    m["compute_s"] = std::max(0.0, r.seconds - comm);
    m["ranks"] = mpi_.size();
    const double gflops = console_.gflops(r.samples_per_s);
    m["gflops"] = gflops;
    if (console_.peak_gflops() > 0) m["peak_pct"] = 100.0 * gflops / console_.peak_gflops();
    write_record(m);
    if (run_.opt.keep_best) keep_best(r);
    console_.on_epoch(r, comm);
}

void RunPolicy::keep_best(const EpochReport& r)
{
    if (!(r.test_loss < best_) && !std::isnan(best_)) return; // the validation loss, this epoch's
    best_ = r.test_loss;
    best_epoch_ = r.epoch;
    if (!mpi_.root()) return;
    // The state right after this epoch's evaluation: where Trainer::run would checkpoint it.
    TrainState s;
    s.step = r.step;
    s.epoch = r.epoch;
    s.elapsed_s = r.total_seconds;
    Step& step = *run_.step.step;
    Checkpoint ck = capture_checkpoint(run_.cfg, run_.data.desc, s, step.model(), step.optimizer());
    ck.provenance = run_provenance(mpi_, *run_.be);
    ck.best_val_loss = best_;
    write_checkpoint(best_checkpoint_path(run_.opt.checkpoint), ck);
}

void RunPolicy::on_checkpoint(const TrainState& s)
{
    if (mpi_.root() && !run_.opt.checkpoint.empty()) {
        Step& step = *run_.step.step;
        Checkpoint ck = capture_checkpoint(run_.cfg, run_.data.desc, s, step.model(), step.optimizer());
        ck.provenance = run_provenance(mpi_, *run_.be);
        ck.best_val_loss = best_;
        write_checkpoint(run_.opt.checkpoint, ck, /*keep_previous=*/true);
    }
    if (run_.trace != nullptr) run_.trace->write(); // a preempted run keeps its trace up to here
}

bool RunPolicy::should_stop(const TrainState& s)
{
    const trace::Span span("stop flag");
    const auto stop_asked = [this] { return comm_.any(stop_signal() != 0); };
    if (test_.hold(s.step, stop_asked)) return true;
    const Stopwatch t;
    const bool stop = stop_asked();
    flag_s_ += t.seconds();
    return stop;
}

double RunPolicy::comm_seconds() const
{
    const GradSyncStats& g = run_.step.step->sum_total();
    return g.mpi_s + g.copy_s + flag_s_;
}

void RunPolicy::finish(const TrainResult& res)
{
    if (run_.trace != nullptr) run_.trace->write();
    // With a validation split the loop's evaluations were of it: the test split once, now
    // (collective), unless a stop signal came (the resumed run evaluates).
    const bool val = run_.data.val != nullptr;
    std::optional<EvalResult> test;
    if (!res.interrupted) test = val ? evaluate(run_.step.step->model(), *run_.data.test, comm_) : res.test;
    const TrainState& s = res.state;
    JsonRecord m;
    m["record"] = "end";
    m["epoch"] = s.epoch;
    m["step"] = s.step;
    m["stopped"] = res.interrupted ? stop_signal_name(stop_signal()) : res.stopped_early ? "max_steps" : "done";
    // The unfinished epoch's mean training loss (stopped mid-epoch), else none.
    m["train_loss"] = number_or_null(s.step_in_epoch > 0 && s.epoch_rows > 0 ? s.epoch_loss_sum / s.epoch_rows : NAN);
    // The final evaluation; none after a stop signal (the resumed run evaluates).
    m["test_loss"] = number_or_null(test ? test->loss : NAN);
    m["test_acc"] = number_or_null(test ? test->accuracy : NAN);
    if (val) {
        m["val_loss"] = number_or_null(res.interrupted ? NAN : res.test.loss);
        m["val_acc"] = number_or_null(res.interrupted ? NAN : res.test.accuracy);
    }
    if (run_.opt.keep_best) m["best_val_loss"] = number_or_null(best_);
    m["seconds"] = s.elapsed_s;
    write_record(m);
    console_.print_end(res, comm_seconds(), test, best_epoch_ > 0 ? best_ : NAN, best_epoch_);
}

} // namespace ompml
