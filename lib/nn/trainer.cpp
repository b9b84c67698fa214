// Training loop and evaluation. Per step only the loss sum and correct count come to the host
// (softmax_xent's return); everything else stays on the device.
#include "nn/trainer.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"
#include "core/trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ompml {

EvalResult evaluate(Model& model, BatchSource& data, Comm& comm, bool confusion)
{
    const int C = model.classes();
    std::vector<double> sums(2 + (confusion ? static_cast<std::size_t>(C) * C : 0), 0.0); // loss, correct, [C*C]
    std::vector<float> logits_host;                                                       // (rows, C)
    std::vector<std::int32_t> y_host;                                                     // (rows)
    data.start_epoch(0, 0);
    DeviceBatch b;
    while (data.next(b)) {
        if (b.rows == 0) continue;
        const float* logits = model.forward(b.x, b.rows, false); // (rows, C)
        const XentStats st = model.loss(b.y, b.rows);
        sums[0] += st.loss_sum;
        sums[1] += static_cast<double>(st.correct);
        if (confusion) {
            const MemorySpace& mem = model.backend().memory();
            logits_host.resize(static_cast<std::size_t>(b.rows) * C);
            y_host.resize(static_cast<std::size_t>(b.rows));
            mem.to_host(logits_host.data(), logits, logits_host.size() * sizeof(float));
            mem.to_host(y_host.data(), b.y, y_host.size() * sizeof(std::int32_t));
            for (int r = 0; r < b.rows; ++r) {
                const float* z = logits_host.data() + static_cast<std::size_t>(r) * C;
                // Same tie rule as softmax_xent: the first maximum wins.
                const int pred = static_cast<int>(std::max_element(z, z + C) - z);
                sums[2 + static_cast<std::size_t>(y_host[r]) * C + pred] += 1.0;
            }
        }
    }
    comm.sum(sums.data(), static_cast<int>(sums.size()));
    EvalResult r;
    r.samples = data.samples();
    require(r.samples > 0, "evaluate: the split has no samples");
    r.loss = sums[0] / static_cast<double>(r.samples);
    r.accuracy = sums[1] / static_cast<double>(r.samples);
    if (confusion) {
        r.confusion.resize(static_cast<std::size_t>(C) * C);
        for (std::size_t i = 0; i < r.confusion.size(); ++i) r.confusion[i] = static_cast<std::int64_t>(sums[2 + i]);
    }
    return r;
}

Trainer::Trainer(const TrainConfig& cfg, Step& step, Comm& comm) : cfg_(cfg), step_(step), comm_(comm)
{
    require(cfg.batch >= 1, "batch must be >= 1, got " + std::to_string(cfg.batch));
    require(cfg.epochs >= 1, "epochs must be >= 1, got " + std::to_string(cfg.epochs));
}

ScheduleConfig Trainer::resolve_schedule(const TrainConfig& cfg, std::int64_t steps_per_epoch)
{
    ScheduleConfig s = cfg.sched;
    if (s.total_steps <= 0) s.total_steps = static_cast<std::int64_t>(cfg.epochs) * steps_per_epoch;
    return s;
}

namespace {

// One call of Trainer::run: the state of the run and the few things that happen to it. The
// loop itself (Trainer::run) reads as what it does.
class RunState {
public:
    RunState(Trainer& t, const TrainConfig& cfg, Model& model, Comm& comm, BatchSource& train, BatchSource* test,
             const TrainState& start, const RunLimits& limits, const Hooks& hooks)
        : t_(t), cfg_(cfg), model_(model), comm_(comm), train_(train), test_(test), start_(start), limits_(limits),
          hooks_(hooks), spe_(train.steps_per_epoch()), st_(start)
    {
        require(spe_ >= 1, "training split has no batches");
        require(start.epoch == start.step / spe_ && start.step_in_epoch == start.step % spe_,
                "resume state: step " + std::to_string(start.step) + " (epoch " + std::to_string(start.epoch) +
                    ", step " + std::to_string(start.step_in_epoch) + " in it) does not fit " + std::to_string(spe_) +
                    " steps per epoch: resume with the dataset and batch size the checkpoint was trained with");
        all_steps_ = static_cast<std::int64_t>(cfg.epochs) * spe_;
        last_ = limits.max_steps > 0 ? std::min(limits.max_steps, all_steps_) : all_steps_;
        sched_ = Trainer::resolve_schedule(cfg, spe_);
        last_checkpoint_ = start.step; // the state we started from is already on disk (or fresh)
    }

    bool more() const { return st_.step < last_; }

    // One optimizer step on the next batch; an epoch (or its resumed part) begins where needed.
    void step()
    {
        trace::set_step(st_.step + 1);
        step_clock_.restart();
        traced_step();
        trace::end_step();
        if (hooks_.on_step)
            hooks_.on_step(StepReport{st_.step, st_.epoch, st_.step_in_epoch, spe_, last_loss_, lr_,
                                      epoch_clock_.seconds(), epoch_samples_});
    }

    bool epoch_done() const { return st_.step_in_epoch == spe_; }

    // Evaluates, reports and closes the epoch that the last step completed.
    void finish_epoch()
    {
        const double seconds = close_epoch_time();
        sync_loss();
        EpochReport rep{};
        rep.train_loss = st_.epoch_rows > 0 ? st_.epoch_loss_sum / st_.epoch_rows : 0.0;
        const std::string where = " (end of epoch " + std::to_string(st_.epoch + 1) + ")";
        require_finite(rep.train_loss, st_.step, "training loss", where);
        if (test_ != nullptr) {
            evaluate_now(where);
            rep.test_loss = res_.test.loss;
            rep.test_acc = res_.test.accuracy;
        }
        ++st_.epoch;
        st_.step_in_epoch = 0;
        st_.epoch_loss_sum = 0.0;
        st_.epoch_rows = 0.0;
        rep.epoch = st_.epoch;
        rep.step = st_.step;
        rep.lr = lr_;
        rep.seconds = seconds;
        rep.samples_per_s = seconds > 0 ? epoch_samples_ / seconds : 0.0;
        rep.total_seconds = start_.elapsed_s + train_seconds_;
        if (hooks_.on_epoch) hooks_.on_epoch(rep);
    }

    bool checkpoint_due() const { return limits_.checkpoint_every > 0 && st_.step % limits_.checkpoint_every == 0; }

    // Inside an epoch the loss sums are brought up to date first (an epoch's end has just done so).
    void checkpoint()
    {
        const trace::Span span("checkpoint");
        sync_loss();
        st_.elapsed_s = start_.elapsed_s + train_seconds_ + (in_epoch_ ? epoch_clock_.seconds() : 0.0);
        if (hooks_.on_checkpoint) hooks_.on_checkpoint(st_);
        last_checkpoint_ = st_.step;
    }

    // A collective point (every rank asks at the same steps), skipped where the run ends anyway.
    bool stop_asked()
    {
        res_.interrupted = more() && hooks_.should_stop && hooks_.should_stop(st_);
        return res_.interrupted;
    }

    // After the loop: the final evaluation (not when interrupted: a time limit or preemption is
    // near, the resumed run evaluates) and the final checkpoint, unless this state is written.
    TrainResult finish(const Stopwatch& total)
    {
        if (in_epoch_) { // stopped inside an epoch (max_steps or a signal)
            close_epoch_time();
            sync_loss();
        }
        res_.stopped_early = st_.step < all_steps_;
        if (test_ != nullptr && !have_eval_ && !res_.interrupted) evaluate_now(" (final evaluation)");
        if (st_.step != last_checkpoint_) checkpoint();
        res_.state = st_;
        res_.state.elapsed_s = start_.elapsed_s + train_seconds_;
        res_.seconds = total.seconds();
        return res_;
    }

private:
    // The step itself, inside its span: the batch, Trainer::train_step, the running sums.
    void traced_step()
    {
        const trace::Span span("step");
        if (st_.step_in_epoch == 0 || st_.step == start_.step) {
            const trace::Span start("epoch start");
            train_.start_epoch(st_.epoch, st_.step_in_epoch);
            epoch_clock_.restart();
            in_epoch_ = true;
            epoch_samples_ = 0.0;
        }
        DeviceBatch b;
        bool got = false;
        {
            const trace::Span batch("batch");
            got = train_.next(b);
        }
        require(got,
                "training data ended after " + std::to_string(st_.step_in_epoch) + " of " + std::to_string(spe_) +
                    " steps of epoch " + std::to_string(st_.epoch));
        lr_ = scheduled_lr(sched_, cfg_.opt.lr, st_.step);
        const XentStats s = t_.train_step(b, lr_, st_.step + 1);
        have_eval_ = false;
        ++st_.step;
        ++st_.step_in_epoch;
        step_losses_.push_back(s.loss_sum); // summed over ranks at the next sync_loss
        st_.epoch_rows += b.global_rows;
        epoch_samples_ += b.global_rows;
        last_loss_ = b.rows > 0 ? s.loss_sum / b.rows : 0.0;
        if (trace::recording()) { // this rank's rate over the step so far (the counters close it)
            const double sec = step_clock_.seconds();
            trace::counter("samples/s", b.global_rows / sec);
            trace::counter("GFLOP/s", model_.train_flops_per_row() * b.rows / sec / 1e9);
        }
    }

    // The steps' losses since the last call, each summed over the ranks in the split tree (one
    // collective for all of them), added to the epoch's running sum in step order: the same bits
    // as summing every step at once, and, with --reproducible-ranks, on any rank count.
    void sync_loss()
    {
        comm_.tree_sum(step_losses_.data(), static_cast<int>(step_losses_.size()));
        for (const double v : step_losses_) st_.epoch_loss_sum += v;
        step_losses_.clear();
    }
    double close_epoch_time()
    {
        const double seconds = epoch_clock_.seconds();
        train_seconds_ += seconds;
        in_epoch_ = false;
        return seconds;
    }
    void evaluate_now(const std::string& where)
    {
        const trace::Span span("evaluate");
        res_.test = evaluate(model_, *test_, comm_);
        require_finite(res_.test.loss, st_.step, "test loss", where);
        have_eval_ = true;
    }

    Trainer& t_;
    const TrainConfig& cfg_;
    Model& model_;
    Comm& comm_;
    BatchSource& train_;
    BatchSource* test_;
    const TrainState start_;
    const RunLimits limits_;
    const Hooks& hooks_;
    const std::int64_t spe_;
    std::int64_t all_steps_ = 0, last_ = 0;
    ScheduleConfig sched_;
    TrainState st_;
    TrainResult res_;
    double train_seconds_ = 0.0; // whole epochs of this process, evaluation excluded
    Stopwatch epoch_clock_;      // the epoch in progress (or its resumed part) ...
    bool in_epoch_ = false;      // ... while its time is not yet in train_seconds_
    double epoch_samples_ = 0.0;
    Stopwatch step_clock_;            // the step in progress
    double last_loss_ = 0.0;          // this rank's mean loss of the last step
    std::vector<double> step_losses_; // this rank's loss sum of each step since the last sync_loss
    std::int64_t last_checkpoint_ = 0;
    bool have_eval_ = false; // res_.test describes the current parameters
    float lr_ = 0.0f;
};

} // namespace

TrainResult Trainer::run(BatchSource& train, BatchSource* test, const TrainState& start, const RunLimits& limits,
                         const Hooks& hooks)
{
    const Stopwatch total;
    step_.optimizer().set_steps(start.step);
    RunState run(*this, cfg_, step_.model(), comm_, train, test, start, limits, hooks);
    // One loop over global steps; what follows a step is decided here only.
    while (run.more()) {
        run.step();
        if (run.epoch_done()) run.finish_epoch();
        if (run.checkpoint_due()) run.checkpoint();
        if (run.stop_asked()) break;
    }
    return run.finish(total);
}

} // namespace ompml
