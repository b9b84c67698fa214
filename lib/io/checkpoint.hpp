// Checkpoints: the whole training state in one HDF5 file readable by h5py (schema in
// docs/checkpoint.md): /config (attributes), /params/layerK/{weight (OUT, IN), bias (OUT)},
// /optimizer/{m,v}/layerK/{weight,bias}, /state (attributes: step, epoch, step_in_epoch, ...).
//
// Writes go to FILE.tmp.<pid>, are flushed and fsync'ed, then renamed over FILE, so a
// checkpoint on disk is always complete. With keep_previous the FILE being replaced stays as
// FILE.prev (ompml-train's rotation: `--resume auto` falls back to it). Reads check the format tag, every shape against the
// stored layer widths, and a checksum of all tensors; a truncated or corrupt file gives an
// Error naming the file and what is wrong.
#pragma once

#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/trainer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

// The dataset a run trained on (recorded for reports and for ompml-eval's default --data).
struct DataDesc {
    std::string path;
    std::uint64_t features = 0;
    int classes = 0;
    std::uint64_t train_samples = 0, test_samples = 0;
};

// A checkpoint on the host: flat tensors in the Mlp's layout (see mlp_layout).
struct Checkpoint {
    TrainConfig config;
    DataDesc data;
    TrainState state;
    std::int64_t opt_steps = 0;     // optimizer steps taken (Adam's t of the last step)
    std::vector<float> params;      // (P)
    std::vector<float> m, v;        // (P) each; v empty for sgd
};

// Downloads the model and optimizer state into a Checkpoint (collective-free; any rank).
Checkpoint capture_checkpoint(const TrainConfig& cfg, const DataDesc& data, const TrainState& state,
                              const Mlp& model, const Optimizer& opt);
// Uploads a checkpoint's tensors into a model/optimizer built from its config.
void restore_checkpoint(const Checkpoint& ck, Mlp& model, Optimizer* opt);

void write_checkpoint(const std::string& path, const Checkpoint& ck, bool keep_previous = false);
Checkpoint read_checkpoint(const std::string& path);

// write_checkpoint(capture_checkpoint(...)).
void save_checkpoint(const std::string& path, const TrainConfig& cfg, const DataDesc& data,
                     const TrainState& state, const Mlp& model, const Optimizer& opt, bool keep_previous = false);

} // namespace ompml
