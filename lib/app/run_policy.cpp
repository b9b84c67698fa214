// ompml-train's run policy (run_policy.hpp).
#include "app/run_policy.hpp"

#include "app/stop_signal.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"

#include <algorithm>

namespace ompml {

RunPolicy::RunPolicy(const MpiSession& mpi, TrainRun& run, TrainConsole& console, Comm& comm)
    : mpi_(mpi), run_(run), console_(console), comm_(comm), test_(mpi.rank())
{
    if (mpi.root() && !run.opt.metrics.empty())
        metrics_ = std::make_unique<MetricsLog>(run.opt.metrics, !run.resume.path.empty());
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

void RunPolicy::on_step(const StepReport& r)
{
    test_.after_step(r.step);
    console_.on_step(r);
}

void RunPolicy::on_epoch(const EpochReport& r)
{
    const double comm = comm_seconds() - comm_at_epoch_; // this epoch's
    comm_at_epoch_ = comm_seconds();
    if (metrics_) {
        MetricsRecord m{r.epoch, r.step,          r.train_loss,    r.test_loss, r.test_acc,
                        r.lr,    r.total_seconds, r.samples_per_s, {}};
        const double gflops = console_.gflops(r.samples_per_s);
        m.extra = {{"comm_s", comm},
                   {"compute_s", std::max(0.0, r.seconds - comm)},
                   {"ranks", static_cast<double>(mpi_.size())},
                   {"gflops", gflops}};
        if (console_.peak_gflops() > 0) m.extra.emplace_back("peak_pct", 100.0 * gflops / console_.peak_gflops());
        metrics_->write(m);
    }
    console_.on_epoch(r, comm);
}

void RunPolicy::on_checkpoint(const TrainState& s)
{
    if (mpi_.root() && !run_.opt.checkpoint.empty()) {
        Step& step = *run_.step.step;
        save_checkpoint(run_.opt.checkpoint, run_.cfg, run_.data.desc, s, step.model(), step.optimizer(),
                        /*keep_previous=*/true);
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
    console_.print_end(res, comm_seconds());
}

} // namespace ompml
