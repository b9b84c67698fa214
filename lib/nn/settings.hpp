// The training hyperparameters (TrainConfig), each described once (core/setting.hpp): its flag,
// its /config attribute, the report line it is printed on, its help and range, and whether a
// resumed run may change it. ompml-train's flags and their validation, the ranks' agreement,
// the start-up report (lib/app) and the checkpoint's /config group (io/checkpoint.cpp) are all
// visitors of this table: a new hyperparameter is one entry here (and its field). The order
// is the order of the flags' help, of the report and of the attributes in /config.
#pragma once

#include "core/setting.hpp"
#include "nn/mlp.hpp"
#include "nn/trainer.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ompml {

// The layer widths' text ("784,512,256,10") and parser, for the table's consumers.
template <>
struct SettingValue<std::vector<int>> {
    static std::string text(const std::vector<int>& v, bool) { return layers_string(v); }
    static void parse(std::string_view text, std::vector<int>& out, const Spec&)
    {
        out = parse_layers(std::string(text), "value");
    }
};

template <class F>
void for_each_train_setting(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--layers", .key = "layers", .group = "model", .help = "widths: input,hidden...,classes"},
      OMPML_FIELD(model.layers));
    f(Spec{.flag = "--activation",
           .key = "activation",
           .group = "model",
           .help = "hidden activation: relu | tanh | gelu"},
      OMPML_FIELD(model.activation));
    // May change on resume: checkpoints hold fp32 master weights whatever the precision, and
    // /config says which precision trained the run last.
    f(Spec{.flag = "--precision",
           .key = "precision",
           .group = "model",
           .help = "fp32 | bf16 (bf16 gemm operands, fp32 accumulation and master weights)",
           .store = may_change,
           .since = 2},
      OMPML_FIELD(model.precision));
    f(Spec{.flag = "--optimizer", .key = "optimizer", .group = "optimizer", .help = "sgd | adam | adamw"},
      OMPML_FIELD(opt.kind));
    f(Spec{.flag = "--lr", .key = "lr", .group = "optimizer", .help = "base learning rate", .range = kPositive},
      OMPML_FIELD(opt.lr));
    f(Spec{.flag = "--momentum",
           .key = "momentum",
           .group = "optimizer",
           .help = "SGD momentum",
           .range = kUnitInterval},
      OMPML_FIELD(opt.momentum));
    // Adam's betas and eps: PyTorch's defaults, stored so a checkpoint says what trained it.
    f(Spec{.key = "beta1", .group = "optimizer"}, OMPML_FIELD(opt.beta1));
    f(Spec{.key = "beta2", .group = "optimizer"}, OMPML_FIELD(opt.beta2));
    f(Spec{.key = "eps", .group = "optimizer"}, OMPML_FIELD(opt.eps));
    f(Spec{.flag = "--weight-decay",
           .key = "weight_decay",
           .group = "optimizer",
           .help = "weight decay (default 0; 0.01 for adamw)",
           .range = kNonNegative},
      OMPML_FIELD(opt.weight_decay));
    f(Spec{.flag = "--schedule",
           .key = "schedule",
           .group = "schedule",
           .help = "lr schedule: constant | step | cosine"},
      OMPML_FIELD(sched.kind));
    f(Spec{.flag = "--warmup",
           .key = "warmup",
           .group = "schedule",
           .help = "linear warmup steps",
           .range = kNonNegative},
      OMPML_FIELD(sched.warmup));
    f(Spec{.flag = "--step-size",
           .key = "step_size",
           .group = "schedule",
           .help = "step schedule: decay every N steps",
           .range = kNonNegative},
      OMPML_FIELD(sched.step_size));
    f(Spec{.flag = "--gamma",
           .key = "gamma",
           .group = "schedule",
           .help = "step schedule: decay factor",
           .range = kPositive},
      OMPML_FIELD(sched.gamma));
    // The cosine's length: epochs x steps per epoch, fixed at a fresh start (Trainer::resolve_schedule).
    f(Spec{.key = "total_steps", .group = "schedule"}, OMPML_FIELD(sched.total_steps));
    f(Spec{.flag = "--clip",
           .key = "clip",
           .group = "optimizer",
           .help = "clip gradients to this global L2 norm (0: off)",
           .range = kNonNegative},
      OMPML_FIELD(clip));
    f(Spec{.flag = "--seed", .key = "seed", .group = "run", .help = "seed of init and shuffle"}, OMPML_FIELD(seed));
    f(Spec{.flag = "--batch", .key = "batch", .group = "run", .help = "global batch size", .range = kPositive},
      OMPML_FIELD(batch));
    f(Spec{.flag = "--epochs",
           .key = "epochs",
           .group = "run",
           .help = "epochs to train (in total, counting resumed ones)",
           .range = kPositive,
           .store = may_change},
      OMPML_FIELD(epochs));
    f(Spec{.flag = "--eval-batch",
           .key = "eval_batch",
           .group = "run",
           .help = "batch size for evaluation",
           .range = kPositive,
           .store = may_change},
      OMPML_FIELD(eval_batch));
    // Fixed: the tree decides the sums' bits; a resumed run keeps it (on any rank count dividing it).
    f(Spec{.flag = "--reproducible-ranks",
           .key = "reproducible_ranks",
           .group = "run",
           .help = "sum every global batch in N chunks in one fixed binary tree: the same bits on every rank count "
                   "that divides N (N a power of two; 0: off; docs/reproducible.md)",
           .range = kNonNegative,
           .since = 3},
      OMPML_FIELD(reproducible_ranks));
}

} // namespace ompml
