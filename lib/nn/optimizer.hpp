// Optimizers, learning-rate schedules and gradient clipping over the flat buffers.
//
// One optimizer call per step over the whole flat parameter buffer (Backend::sgd_update /
// adam_update); state (SGD momentum m, Adam m and v) is flat too, same layout as the
// parameters. Semantics follow PyTorch so runs can be compared:
//   sgd   : torch.optim.SGD(lr, momentum, weight_decay) (dampening 0, no nesterov)
//   adam  : torch.optim.Adam(lr, betas, eps, weight_decay)   (L2 added to the gradient)
//   adamw : torch.optim.AdamW(lr, betas, eps, weight_decay)  (decoupled decay)
// Clipping follows torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied
// when < 1, by the optimizer step as it reads the gradient (the gradient is not rewritten).
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/enum_names.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

enum class OptKind { sgd, adam, adamw };
template <>
struct EnumNames<OptKind> {
    static constexpr const char* what = "optimizer";
    static constexpr std::pair<OptKind, const char*> names[] = {
        {OptKind::sgd, "sgd"}, {OptKind::adam, "adam"}, {OptKind::adamw, "adamw"}};
};

struct OptimizerConfig {
    OptKind kind = OptKind::adam;
    float lr = 1e-3f;      // base learning rate (the schedule scales it)
    float momentum = 0.9f; // sgd only
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.0f;
};

class Optimizer {
public:
    Optimizer(Backend& be, const OptimizerConfig& cfg, std::size_t n);

    const OptimizerConfig& config() const { return cfg_; }
    // Steps taken so far (Adam's t - 1); restored from checkpoints.
    std::int64_t steps() const { return steps_; }
    void set_steps(std::int64_t t) { steps_ = t; }

    // W -= update(grad_scale * G) with learning rate lr (the scheduled value), one kernel over
    // all n. G is float, or the bf16 gradient sum of --grad-dtype bf16; grad_scale is the
    // clipping factor (GradClip::scale).
    //   W, G: (n), device
    // W16, when non-null, receives bf16(W) in the same pass (the mixed-precision weight copy).
    void step(float* W, const float* G, float lr, bf16* W16 = nullptr, float grad_scale = 1.0f);
    void step(float* W, const bf16* G, float lr, bf16* W16 = nullptr, float grad_scale = 1.0f);

    // State for checkpoints: m (sgd momentum / adam first moment), v (adam only; empty for sgd).
    bool has_v() const { return cfg_.kind != OptKind::sgd; }
    std::vector<float> download_m() const { return m_.to_vector(); }
    std::vector<float> download_v() const { return has_v() ? v_.to_vector() : std::vector<float>{}; }
    void upload_state(const std::vector<float>& m, const std::vector<float>& v);

private:
    template <class T>
    void step_any(float* W, const T* G, float lr, bf16* W16, float grad_scale);

    Backend& be_;
    OptimizerConfig cfg_;
    std::size_t n_;
    std::int64_t steps_ = 0;
    DeviceBuffer<float> m_, v_; // (n)
};

// Learning rate as a function of the global step (0-based: the lr used by step s + 1).
//   constant : lr
//   step     : lr * gamma^floor((s - warmup) / step_size)
//   cosine   : lr * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup)))  (reaches 0 at total)
// All three with linear warmup: lr * (s + 1) / warmup for s < warmup.
enum class SchedKind { constant, step, cosine };
template <>
struct EnumNames<SchedKind> {
    static constexpr const char* what = "schedule";
    static constexpr std::pair<SchedKind, const char*> names[] = {
        {SchedKind::constant, "constant"}, {SchedKind::step, "step"}, {SchedKind::cosine, "cosine"}};
};

struct ScheduleConfig {
    SchedKind kind = SchedKind::constant;
    std::int64_t warmup = 0;      // steps
    std::int64_t step_size = 0;   // steps between decays (step schedule)
    float gamma = 0.1f;           // decay factor (step schedule)
    std::int64_t total_steps = 0; // length of the cosine (steps; set from epochs at a fresh start)
};
float scheduled_lr(const ScheduleConfig& s, float base_lr, std::int64_t step);

// Gradient clipping to global L2 norm max_norm: the norm of the flat gradient G (n, device;
// float or bf16) and the factor torch.nn.utils.clip_grad_norm_ would scale G by, for
// Optimizer::step's grad_scale: max_norm / (norm + 1e-6) when that is < 1, else 1 (also when
// max_norm <= 0). Scaling as the step reads G is bitwise what scaling G first would give (one
// float multiply either way) and saves a pass over G. On P ranks call it after the gradient
// sum, so every rank clips alike.
struct GradClip {
    double norm = 0.0;
    float scale = 1.0f;
};
GradClip clip_grad_norm(Backend& be, const float* G, std::size_t n, float max_norm);
GradClip clip_grad_norm(Backend& be, const bf16* G, std::size_t n, float max_norm);

} // namespace ompml
