// Training loop and evaluation. Per step only the loss sum and correct count come to the host
// (softmax_xent's return); everything else stays on the device.
#include "nn/trainer.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ompml {

namespace {

// "step 123: " (or "" for an unnamed step), the start of every non-finite message.
std::string step_prefix(std::int64_t step)
{
    return step > 0 ? "step " + std::to_string(step) + ": " : std::string();
}

// Stops the run when v (a loss or norm that is the same on every rank or this rank's own) is
// not finite.
void require_finite(double v, std::int64_t step, const std::string& what, const std::string& context)
{
    if (std::isfinite(v)) return;
    throw Error(step_prefix(step) + what + " is " + non_finite_name(v) + " (non-finite)" + context +
                ": stopped; the checkpoints already written are kept (check the data, the learning rate and "
                "--clip)");
}

std::string lr_text(float lr)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, " at lr %g", static_cast<double>(lr));
    return buf;
}

} // namespace

EvalResult evaluate(Mlp& model, BatchSource& data, Comm& comm, bool confusion)
{
    const int C = model.classes();
    std::vector<double> sums(2 + (confusion ? static_cast<std::size_t>(C) * C : 0), 0.0); // loss, correct, [C*C]
    std::vector<float> logits_host;     // (rows, C)
    std::vector<std::int32_t> y_host;   // (rows)
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

Trainer::Trainer(Backend& be, const TrainConfig& cfg, Mlp& model, Optimizer& opt, Comm& comm)
    : be_(be), cfg_(cfg), model_(model), opt_(opt), comm_(comm)
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

XentStats Trainer::train_step(const DeviceBatch& b, float lr, std::int64_t step)
{
    require(b.global_rows >= 1, "train_step: a global batch has no rows");
    const float scale = 1.0f / static_cast<float>(b.global_rows);
    if (b.rows > 0) model_.forward(b.x, b.rows, true);
    float* G = model_.grads();
    const XentStats st = model_.loss_backward(b.x, b.y, b.rows, scale,
                                              [&](int, const LayerView& v) { comm_.grad_ready(be_, G, v); });
    comm_.finish_grads(be_, G, model_.num_params());
    // After the gradient sum (its collectives are complete on every rank), before the optimizer
    // step (the parameters stay finite).
    const std::string rank = comm_.size() > 1 ? " on rank " + std::to_string(comm_.rank()) : "";
    require_finite(st.loss_sum, step, "loss", rank + lr_text(lr));
    if (cfg_.clip > 0.0f)
        require_finite(clip_grad_norm(be_, G, model_.num_params(), cfg_.clip), step, "gradient norm", lr_text(lr));
    opt_.step(model_.params(), G, lr);
    return st;
}

TrainResult Trainer::run(BatchSource& train, BatchSource* test, const TrainState& start, const RunLimits& limits,
                         const Hooks& hooks)
{
    const Stopwatch total;
    TrainResult res;
    TrainState st = start;
    const std::int64_t spe = train.steps_per_epoch();
    require(spe >= 1, "training split has no batches");
    require(st.step_in_epoch >= 0 && st.step_in_epoch < spe,
            "resume state: step_in_epoch " + std::to_string(st.step_in_epoch) + " is outside [0, " +
                std::to_string(spe) + ") steps per epoch");
    opt_.set_steps(st.step);
    const ScheduleConfig sched = resolve_schedule(cfg_, spe);
    double train_seconds = 0.0;           // this process, evaluation excluded
    double local_loss = 0.0;              // this rank's loss sum not yet added to st (summed lazily)
    std::int64_t last_checkpoint = st.step; // the state we started from is already on disk (or fresh)
    bool have_eval = false;                 // res.test describes the current parameters

    auto sync_loss = [&] {
        double v = local_loss;
        comm_.sum(&v, 1);
        st.epoch_loss_sum += v;
        local_loss = 0.0;
    };
    auto checkpoint = [&](double running_epoch_s) {
        st.elapsed_s = start.elapsed_s + train_seconds + running_epoch_s;
        if (hooks.on_checkpoint) hooks.on_checkpoint(st);
        last_checkpoint = st.step;
    };
    auto max_reached = [&] { return limits.max_steps > 0 && st.step >= limits.max_steps; };
    bool interrupted = false;
    auto stop_asked = [&] { return hooks.should_stop && !max_reached() && hooks.should_stop(st); };

    while (st.epoch < cfg_.epochs && !max_reached()) {
        train.start_epoch(st.epoch, st.step_in_epoch);
        const Stopwatch ep;
        double ep_samples = 0.0;
        float lr = 0.0f;
        DeviceBatch b;
        while (st.step_in_epoch < spe && !max_reached()) {
            require(train.next(b), "training data ended after " + std::to_string(st.step_in_epoch) + " of " +
                                       std::to_string(spe) + " steps of epoch " + std::to_string(st.epoch));
            lr = scheduled_lr(sched, cfg_.opt.lr, st.step);
            const XentStats s = train_step(b, lr, st.step + 1);
            have_eval = false;
            ++st.step;
            ++st.step_in_epoch;
            local_loss += s.loss_sum;
            st.epoch_rows += b.global_rows;
            ep_samples += b.global_rows;
            if (hooks.on_step)
                hooks.on_step(StepReport{st.step, st.epoch, st.step_in_epoch, spe,
                                         b.rows > 0 ? s.loss_sum / b.rows : 0.0, lr, ep.seconds(), ep_samples});
            const bool due = limits.checkpoint_every > 0 && st.step % limits.checkpoint_every == 0;
            if (due && st.step_in_epoch < spe) { // at an epoch's end: after its evaluation
                sync_loss();
                checkpoint(ep.seconds());
            }
            if (st.step_in_epoch < spe && stop_asked()) {
                interrupted = true;
                break;
            }
        }
        const double ep_seconds = ep.seconds();
        train_seconds += ep_seconds;
        sync_loss();
        if (st.step_in_epoch < spe) break; // stopped by max_steps inside the epoch

        EpochReport rep{};
        rep.train_loss = st.epoch_rows > 0 ? st.epoch_loss_sum / st.epoch_rows : 0.0;
        const std::string epoch_end = " (end of epoch " + std::to_string(st.epoch + 1) + ")";
        require_finite(rep.train_loss, st.step, "training loss", epoch_end);
        rep.lr = lr;
        rep.seconds = ep_seconds;
        rep.samples_per_s = ep_seconds > 0 ? ep_samples / ep_seconds : 0.0;
        if (test != nullptr) {
            res.test = evaluate(model_, *test, comm_);
            require_finite(res.test.loss, st.step, "test loss", epoch_end);
            have_eval = true;
            rep.test_loss = res.test.loss;
            rep.test_acc = res.test.accuracy;
        }
        ++st.epoch;
        st.step_in_epoch = 0;
        st.epoch_loss_sum = 0.0;
        st.epoch_rows = 0.0;
        rep.epoch = st.epoch;
        rep.step = st.step;
        rep.total_seconds = start.elapsed_s + train_seconds;
        if (hooks.on_epoch) hooks.on_epoch(rep);
        if (limits.checkpoint_every > 0 && st.step % limits.checkpoint_every == 0) checkpoint(0.0);
        if (st.epoch < cfg_.epochs && stop_asked()) {
            interrupted = true;
            break;
        }
    }
    res.stopped_early = st.epoch < cfg_.epochs;
    res.interrupted = interrupted;
    // An interrupted run is short of time (a time limit or preemption is near): checkpoint
    // only, the resumed run evaluates.
    if (test != nullptr && !have_eval && !interrupted) {
        res.test = evaluate(model_, *test, comm_);
        require_finite(res.test.loss, st.step, "test loss", " (final evaluation)");
    }
    if (st.step != last_checkpoint) checkpoint(0.0);
    res.state = st;
    res.state.elapsed_s = start.elapsed_s + train_seconds;
    res.seconds = total.seconds();
    return res;
}

} // namespace ompml
