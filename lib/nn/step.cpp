// MlpStep<T, G> and make_step (step.hpp): the step's body is written once; make_step is the one
// switch over the run's number formats.
#include "nn/step.hpp"

#include "core/check.hpp"
#include "core/trace.hpp"
#include "nn/mlp.hpp"

#include <cmath>
#include <cstdio>

namespace ompml {
namespace {

std::string lr_text(float lr)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, " at lr %g", static_cast<double>(lr));
    return buf;
}

// The transport maker of GradSums for gradient type G (picked by the pointer's type).
const auto& maker(const GradSums& s, float*) { return s.fp32; }
const auto& maker(const GradSums& s, bf16*) { return s.bf16; }

// The sum a step gets for its gradient: the transport GradSums makes, or NoSum on one rank.
template <class G>
std::unique_ptr<GradientSum<G>> make_sum(const GradSums& s, G* grad, std::size_t n)
{
    const auto& make = maker(s, grad);
    if (!make) return std::make_unique<NoSum<G>>(n);
    return make(grad, n);
}

template <class T, class G>
class MlpStep final : public Step {
public:
    MlpStep(Backend& be, const TrainConfig& cfg, int max_batch, const GradSums& sums)
        : be_(be), cfg_(cfg), rank_(sums.rank), ranks_(sums.ranks),
          model_(be, cfg.model, max_batch, sums.memory != nullptr ? *sums.memory : be.memory(),
                 BatchTree{cfg.reproducible_ranks, sums.rank, sums.ranks}),
          opt_(be, cfg.opt, model_.num_params()), sum_(make_sum(sums, model_.grads(), model_.num_params()))
    {
    }

    XentStats run(const DeviceBatch& b, float lr, std::int64_t step) override
    {
        const XentStats st = forward_backward(b, true);
        // After the gradient sum (its collectives are complete on every rank), before the
        // optimizer step (the parameters stay finite).
        const std::string rank = ranks_ > 1 ? " on rank " + std::to_string(rank_) : "";
        require_finite(st.loss_sum, step, "loss", rank + lr_text(lr));
        GradClip clip; // scale 1: none
        if (cfg_.clip > 0.0f) {
            const trace::Span span("clip", trace::device);
            clip = clip_grad_norm(be_, model_.grads(), model_.num_params(), cfg_.clip);
            require_finite(clip.norm, step, "gradient norm", lr_text(lr));
        }
        const trace::Span span("optimizer", trace::device);
        opt_.step(model_.params(), model_.grads(), lr, model_.weight_copy(), clip.scale);
        return st;
    }

    Model& model() override { return model_; }
    Optimizer& optimizer() override { return opt_; }
    std::string sum_describe() const override { return sum_->describe(); }
    const char* sum_kind() const override { return sum_->kind(); }
    const GradSyncStats& sum_last() const override { return sum_->last_step(); }
    const GradSyncStats& sum_total() const override { return sum_->total(); }

    XentStats gradient(const DeviceBatch& b, bool summed) override { return forward_backward(b, summed); }
    std::vector<float> download_gradient() const override
    {
        std::vector<G> g(model_.num_params());
        be_.memory().to_host(g.data(), model_.grads(), g.size() * sizeof(G));
        std::vector<float> out(g.size());
        for (std::size_t i = 0; i < g.size(); ++i) out[i] = to_float(g[i]);
        return out;
    }
    Precision gradient_type() const override { return std::is_same_v<G, bf16> ? Precision::bf16 : Precision::fp32; }

private:
    // Forward, then loss and backward, handing each layer's gradient to the sum as it is final
    // (the transport reads it at once, on the host or through MPI: the device work must be done
    // first where other ranks are involved), then the sum's completion. With sum false the
    // gradient stays this rank's own.
    XentStats forward_backward(const DeviceBatch& b, bool sum)
    {
        require(b.global_rows >= 1, "train_step: a global batch has no rows");
        if (b.rows > 0) model_.forward(b.x, b.rows, true);
        if (!sum) return model_.loss_backward(b.y, b.rows, b.global_rows);
        const XentStats st = model_.loss_backward(b.y, b.rows, b.global_rows, [&](int, const LayerView& v) {
            if (ranks_ > 1) be_.synchronize();
            sum_->ready(v.w, v.count());
        });
        sum_->finish();
        return st;
    }

    Backend& be_;
    TrainConfig cfg_;
    int rank_, ranks_;
    Mlp<T, G> model_;
    Optimizer opt_;
    std::unique_ptr<GradientSum<G>> sum_;
};

// The one switch over the run's number formats: f.template operator()<T, G>() for the operand
// type of `compute` and the gradient type of bf16_grads.
template <class F>
auto with_formats(Precision compute, bool bf16_grads, F&& f)
{
    if (compute == Precision::bf16)
        return bf16_grads ? f.template operator()<bf16, bf16>() : f.template operator()<bf16, float>();
    return bf16_grads ? f.template operator()<float, bf16>() : f.template operator()<float, float>();
}

} // namespace

std::unique_ptr<Step> make_step(Backend& be, const TrainConfig& cfg, int max_batch, Precision grad_dtype,
                                const GradSums& sums)
{
    const bool bf16_grads = grad_dtype == Precision::bf16 && sums.ranks > 1;
    check_reproducible(cfg.reproducible_ranks, sums.ranks, grad_dtype);
    return with_formats(cfg.model.precision, bf16_grads, [&]<class T, class G>() -> std::unique_ptr<Step> {
        return std::make_unique<MlpStep<T, G>>(be, cfg, max_batch, sums);
    });
}

std::unique_ptr<Model> make_model(Backend& be, const MlpConfig& cfg, int max_batch)
{
    return with_formats(cfg.precision, false, [&]<class T, class G>() -> std::unique_ptr<Model> {
        return std::make_unique<Mlp<T, G>>(be, cfg, max_batch);
    });
}

void check_reproducible(int chunks, int ranks, Precision grad_dtype)
{
    if (chunks == 0) return;
    require(chunks >= 1 && (chunks & (chunks - 1)) == 0,
            "--reproducible-ranks " + std::to_string(chunks) + ": must be a power of two (1, 2, 4, 8, ...) or 0 (off)");
    require(chunks % ranks == 0,
            "--reproducible-ranks " + std::to_string(chunks) + ": " + std::to_string(ranks) + " ranks do not divide " +
                std::to_string(chunks) + " (run on a rank count that divides it, or change it on a fresh start)");
    require(grad_dtype == Precision::fp32,
            "--reproducible-ranks with --grad-dtype bf16: refused (each rank would round its partial sum to bf16, "
            "and how much a rank sums depends on the rank count); use --grad-dtype fp32");
}

void require_finite(double v, std::int64_t step, const std::string& what, const std::string& context)
{
    if (std::isfinite(v)) return;
    throw Error((step > 0 ? "step " + std::to_string(step) + ": " : std::string()) + what + " is " +
                non_finite_name(v) + " (non-finite)" + context +
                ": stopped; the checkpoints already written are kept (check the data, the learning rate and "
                "--clip)");
}

} // namespace ompml
