// ompml-train --write-config FILE: the settings a command line resolves to (defaults, derived
// defaults such as AdamW's weight decay, and, when resuming, the checkpoint's settings and
// dataset), written as a TOML file that `ompml-train --config FILE` reads back through CLI11's
// own config support (app/cli.hpp), so a run can be rerun exactly: the same settings give a
// checkpoint identical but for its wall time.
//
//   # ompml-train configuration
//   # written by ompml-train 0.1.0 (git 1a2b3c4d5e6f, preset host, Clang 19.1.7); rerun: ompml-train --config FILE
//   layers = "784,512,256,10"
//   lr = 0.001
//   streaming = false
//
// One "name = value" line per flag of both settings tables (nn/settings.hpp, app/train_options.hpp):
// the flag's long name, numbers as the shortest decimal that reads back to the same value,
// booleans as true/false, the rest quoted. Options that are empty (no --checkpoint, no --trace)
// are left out. The file is written atomically and never over a file that is not an ompml
// config file (io/output_target.hpp).
#pragma once

#include "app/train_options.hpp"
#include "nn/step.hpp"

#include <string>

namespace ompml {

// The TOML text of a run's settings.
std::string config_text(const TrainConfig& cfg, const TrainOptions& opt);

// Writes config_text to path (rank 0 only: the caller decides). Throws Error naming path.
void write_config(const std::string& path, const TrainConfig& cfg, const TrainOptions& opt);

} // namespace ompml
