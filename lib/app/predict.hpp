// ompml-predict as library functions: a trained model's class probabilities and predictions on
// images that need no labels (io/images.hpp: a dataset split, an HDF5 file of /images, an IDX
// file), written to an HDF5 file h5py reads:
//   /probabilities  (N, C) float32   softmax of the logits, each row sums to 1
//   /predictions    (N) int32        the most probable class (the first, on a tie, as ompml-eval)
//   /labels         (N) int32        the source's labels, where it has them
//   /provenance     attributes       what wrote it (core/provenance.hpp)
//   root attributes: format = "ompml-predictions", checkpoint, checkpoint_step, data, source,
//                    classes, created_by = "ompml-predict"
// The input is scaled as training scales it (uint8 x / 255 on the device; float32 as stored).
// One process: the work is one forward pass per batch.
#pragma once

#include "core/provenance.hpp"
#include "core/setting.hpp"
#include "io/dataset.hpp"
#include "parallel/comm.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ompml {

struct PredictOptions {
    std::string checkpoint;
    std::string data; // "": the dataset the checkpoint was trained on
    std::string output;
    Split split = Split::test;
    std::string backend = "omp";
    int batch = 1000;
    bool force = false;
};

template <class F>
void for_each_predict_option(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--checkpoint",
           .key = "checkpoint",
           .help = "checkpoint file written by ompml-train (required)",
           .store = run_only},
      OMPML_FIELD(checkpoint));
    f(Spec{.flag = "--data",
           .key = "data",
           .help = "images: a dataset file (its --split), an HDF5 file of /images (N, F) or (N, H, W), uint8 or "
                   "float32, or an IDX file of unsigned bytes (default: the checkpoint's dataset)",
           .store = run_only},
      OMPML_FIELD(data));
    f(Spec{.flag = "-o,--output",
           .key = "output",
           .help = "predictions file to write (HDF5; required)",
           .store = run_only},
      OMPML_FIELD(output));
    f(Spec{.flag = "--split",
           .key = "split",
           .help = "which split of a dataset file: test | train | val",
           .store = run_only},
      OMPML_FIELD(split));
    f(Spec{.flag = "--backend", .key = "backend", .help = "kernel backend", .store = run_only}, OMPML_FIELD(backend));
    f(Spec{.flag = "--batch",
           .key = "batch",
           .help = "rows per forward pass",
           .range = {1.0, 1 << 30, false},
           .store = run_only},
      OMPML_FIELD(batch));
    f(Spec{.flag = "--force",
           .key = "force",
           .help = "replace -o FILE even when it is not a predictions file (never a directory)",
           .store = run_only},
      OMPML_FIELD(force));
}

// Parses ompml-predict's command line: the exit status when there is nothing to do (0 after
// --help or --version, 2 after a usage error, printed where print is true).
std::optional<int> parse_predict_flags(int argc, char** argv, bool print, PredictOptions& out);

struct Predictions {
    std::uint64_t rows = 0;
    int classes = 0;
    std::vector<float> probabilities; // (rows, classes)
    std::vector<std::int32_t> predictions, labels;
    std::string checkpoint, data, source, model, backend, device;
    std::int64_t step = 0;
};

// Reads the checkpoint and the images, and runs the model over them in batches (one rank).
Predictions predict(const MpiSession& mpi, PredictOptions opt);

// Writes the predictions file atomically (after the output check: never over a file that is
// not an ompml predictions file, unless force).
void write_predictions(const std::string& path, const Predictions& p, const Provenance& provenance);

// One line: "ompml-predict: wrote P: N rows of C class probabilities from CHECKPOINT (step S) on DATA
// SOURCE[, accuracy A against its labels]".
void print_predictions(const std::string& path, const Predictions& p);

} // namespace ompml
