// ompml-eval as library functions: its flags (one table, as ompml-train's), the evaluation of
// a checkpoint on a dataset split over all ranks, and the report with the confusion matrix.
#pragma once

#include "core/setting.hpp"
#include "io/dataset.hpp"
#include "nn/trainer.hpp"
#include "parallel/comm.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ompml {

struct EvalOptions {
    std::string checkpoint;
    std::string data; // "": the dataset the checkpoint was trained on
    Split split = Split::test;
    std::string backend = "omp";
    int batch = 1000;
};

template <class F>
void for_each_eval_option(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--checkpoint",
           .key = "checkpoint",
           .help = "checkpoint file written by ompml-train (required)",
           .store = run_only},
      OMPML_FIELD(checkpoint));
    f(Spec{.flag = "--data",
           .key = "data",
           .help = "dataset file (default: the one the checkpoint was trained on)",
           .store = run_only},
      OMPML_FIELD(data));
    f(Spec{.flag = "--split",
           .key = "split",
           .help = "test | train | val (the dataset's /val, or the rows the run held out with --val-fraction)",
           .store = run_only},
      OMPML_FIELD(split));
    f(Spec{.flag = "--backend", .key = "backend", .help = "kernel backend", .store = run_only}, OMPML_FIELD(backend));
    f(Spec{.flag = "--batch",
           .key = "batch",
           .help = "evaluation batch size",
           .range = {1.0, 1 << 30, false},
           .store = run_only},
      OMPML_FIELD(batch));
}

// Parses ompml-eval's command line (every rank the same one): the exit status when there is
// nothing to evaluate (0 after --help, 2 after a usage error, printed where print is true).
std::optional<int> parse_eval_flags(int argc, char** argv, bool print, EvalOptions& out);

// What one evaluation found, and what ran it (for the report).
struct EvalReport {
    std::string checkpoint, data, model, backend, device;
    std::int64_t step = 0, epoch = 0;
    int classes = 0;
    EvalResult result;              // loss, accuracy, confusion (classes x classes)
    std::vector<std::string> where; // each rank's host and device (rank 0 only)
};

// Collective: binds the device, reads the checkpoint, opens the split, evaluates on every rank's
// slice of each batch and sums over the ranks.
EvalReport run_eval(const MpiSession& mpi, EvalOptions opt);

// The report: what was evaluated, each rank's device (several ranks), loss and accuracy, and
// the confusion matrix with each class's recall.
void print_eval(const EvalReport& r, int ranks);

} // namespace ompml
