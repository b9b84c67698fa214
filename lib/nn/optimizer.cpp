// Optimizers, schedules and clipping: host-side bookkeeping around one kernel per step.
#include "nn/optimizer.hpp"

#include "core/check.hpp"

#include <cmath>

namespace ompml {

Optimizer::Optimizer(Backend& be, const OptimizerConfig& cfg, std::size_t n) : be_(be), cfg_(cfg), n_(n)
{
    require(cfg.lr > 0.0f && std::isfinite(cfg.lr), "learning rate must be > 0, got " + std::to_string(cfg.lr));
    require(cfg.weight_decay >= 0.0f, "weight decay must be >= 0, got " + std::to_string(cfg.weight_decay));
    try {
        m_ = DeviceBuffer<float>(be.memory(), n);
        if (has_v()) v_ = DeviceBuffer<float>(be.memory(), n);
    } catch (const std::exception& e) { // Error from the device, or bad_alloc on the host
        throw Error(std::string(enum_name(cfg.kind)) + " state for " + std::to_string(n) +
                    " parameters: cannot allocate " + bytes_text((has_v() ? 2 : 1) * n * sizeof(float)) + " of " +
                    be.memory().name() + " memory: " + e.what());
    }
    be.fill(n, m_.data(), 0.0f);
    if (has_v()) be.fill(n, v_.data(), 0.0f);
}

void Optimizer::step(float* W, const float* G, float lr, bf16* W16, float grad_scale)
{
    step_any(W, G, lr, W16, grad_scale);
}

void Optimizer::step(float* W, const bf16* G, float lr, bf16* W16, float grad_scale)
{
    step_any(W, G, lr, W16, grad_scale);
}

template <class T>
void Optimizer::step_any(float* W, const T* G, float lr, bf16* W16, float grad_scale)
{
    ++steps_;
    if (cfg_.kind == OptKind::sgd) {
        SgdStep s;
        s.lr = lr;
        s.momentum = cfg_.momentum;
        s.weight_decay = cfg_.weight_decay;
        s.grad_scale = grad_scale;
        be_.sgd_update(n_, s, W, G, m_.data(), W16);
        return;
    }
    AdamStep s;
    s.lr = lr;
    s.beta1 = cfg_.beta1;
    s.beta2 = cfg_.beta2;
    s.eps = cfg_.eps;
    s.weight_decay = cfg_.weight_decay;
    s.decoupled = cfg_.kind == OptKind::adamw;
    s.t = steps_;
    s.grad_scale = grad_scale;
    be_.adam_update(n_, s, W, G, m_.data(), v_.data(), W16);
}

void Optimizer::upload_state(const std::vector<float>& m, const std::vector<float>& v)
{
    require(m.size() == n_,
            "optimizer state m: got " + std::to_string(m.size()) + " values, expected " + std::to_string(n_));
    m_.upload(m);
    if (has_v()) {
        require(v.size() == n_,
                "optimizer state v: got " + std::to_string(v.size()) + " values, expected " + std::to_string(n_));
        v_.upload(v);
    }
}

float scheduled_lr(const ScheduleConfig& s, float base_lr, std::int64_t step)
{
    // Computed in double from (config, step) only, so a resumed run gets the same bits.
    const double lr = base_lr;
    if (step < s.warmup) return static_cast<float>(lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup));
    const std::int64_t t = step - s.warmup;
    switch (s.kind) {
    case SchedKind::step:
        if (s.step_size <= 0) return base_lr;
        return static_cast<float>(lr * std::pow(static_cast<double>(s.gamma), static_cast<double>(t / s.step_size)));
    case SchedKind::cosine: {
        const std::int64_t span = s.total_steps - s.warmup;
        if (span <= 0) return base_lr;
        const double frac = std::min(1.0, static_cast<double>(t) / static_cast<double>(span));
        return static_cast<float>(lr * 0.5 * (1.0 + std::cos(3.14159265358979323846 * frac)));
    }
    default: return base_lr;
    }
}

namespace {
GradClip clip_factor(double sum_squares, float max_norm)
{
    GradClip c;
    c.norm = std::sqrt(sum_squares);
    if (max_norm > 0.0f) {
        const double coef = static_cast<double>(max_norm) / (c.norm + 1e-6);
        if (coef < 1.0) c.scale = static_cast<float>(coef);
    }
    return c;
}
} // namespace

GradClip clip_grad_norm(Backend& be, const float* G, std::size_t n, float max_norm)
{
    return clip_factor(be.sum_squares(n, G), max_norm);
}

GradClip clip_grad_norm(Backend& be, const bf16* G, std::size_t n, float max_norm)
{
    return clip_factor(be.sum_squares(n, G), max_norm);
}

} // namespace ompml
