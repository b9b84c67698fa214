// Checkpoints: the whole training state in one HDF5 file readable by h5py (schema in
// docs/checkpoint.md): /config (attributes), /params/layerK/{weight (OUT, IN), bias (OUT)},
// /optimizer/{m,v}/layerK/{weight,bias}, /state (attributes: step, epoch, step_in_epoch, ...).
//
// Writes go to a new FILE.tmp.<host>.<pid>.<random> (io/atomic_file.hpp: created exclusively,
// never through a link), are flushed and fsync'ed, then renamed over FILE, so a checkpoint on
// disk is always complete. The file starts with a 512-byte HDF5 user block whose
// first line is "ompml-checkpoint" (kCheckpointMagic), so even a truncated checkpoint is
// recognisable by its first bytes; files of older builds (no user block) are recognised by
// their /config format attribute. Nothing but a checkpoint is ever overwritten: a FILE (or
// FILE.prev) that holds anything else is refused (check_checkpoint_target). With keep_previous
// the FILE being replaced stays as FILE.prev (ompml-train's rotation: `--resume auto` falls
// back to it), but only when it is a valid checkpoint: a damaged one is replaced, never rotated
// over a good FILE.prev. Reads check the format tag, every shape against the stored layer
// widths, the /state counters, that every tensor is finite, and a checksum of all tensors; a
// truncated, corrupt or unusable file gives an Error naming the file and what is wrong.
#pragma once

#include "nn/model.hpp"
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

// A checkpoint on the host: flat tensors in the model's layout (see mlp_layout).
struct Checkpoint {
    TrainConfig config;
    DataDesc data;
    TrainState state;
    std::int64_t opt_steps = 0; // optimizer steps taken (Adam's t of the last step)
    std::vector<float> params;  // (P)
    std::vector<float> m, v;    // (P) each; v empty for sgd
};

// Downloads the model and optimizer state into a Checkpoint (collective-free; any rank).
Checkpoint capture_checkpoint(const TrainConfig& cfg, const DataDesc& data, const TrainState& state, const Model& model,
                              const Optimizer& opt);
// Uploads a checkpoint's tensors into a model/optimizer built from its config.
void restore_checkpoint(const Checkpoint& ck, Model& model, Optimizer* opt);

// The first bytes of every checkpoint this build writes (the start of its HDF5 user block).
extern const char* const kCheckpointMagic; // "ompml-checkpoint\n"

// Throws a one-line Error when `path` cannot be a checkpoint target without destroying a user's
// file; drivers call it before any training (write_checkpoint calls it again before it writes).
// Accepted: a missing file, an empty file, or an ompml checkpoint (valid, damaged or truncated:
// it starts with kCheckpointMagic; or, from older builds, an HDF5 file whose /config format is
// "ompml-checkpoint"). Refused: a dataset file, any other HDF5 file, a text or other file, a
// directory, anything but a regular file, a symbolic link to any of these or to nothing; a
// missing parent directory, or one this process cannot create files in. With keep_previous
// the same rules hold for "<path>.prev", which the rotation replaces. Also removes stale
// temporaries of dead processes on this host (atomic_file::remove_stale).
void check_checkpoint_target(const std::string& path, bool keep_previous = true);

// True when read_checkpoint(path) would succeed (the rotation's test for "worth keeping").
bool is_valid_checkpoint(const std::string& path);

// Refuses (Error naming the step, the file and the first bad tensor element) a checkpoint whose
// params, m or v hold NaN or Inf, and a target that check_checkpoint_target refuses.
void write_checkpoint(const std::string& path, const Checkpoint& ck, bool keep_previous = false);
// Refuses a missing, foreign, truncated or damaged file, negative or inconsistent /state and
// /optimizer counters (naming the attribute) and non-finite tensors (naming the tensor and the
// first bad element, e.g. "/params/layer0/weight[3, 17]"), so resume and ompml-eval never start
// from a state that cannot train.
Checkpoint read_checkpoint(const std::string& path);

// write_checkpoint(capture_checkpoint(...)).
void save_checkpoint(const std::string& path, const TrainConfig& cfg, const DataDesc& data, const TrainState& state,
                     const Model& model, const Optimizer& opt, bool keep_previous = false);

} // namespace ompml
