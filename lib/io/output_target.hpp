// The one place that knows whether a path holds one of ompml's own kinds of file, and so whether a
// program that writes that kind may replace it. Every writer asks here before it writes:
// ompml-train (checkpoints, the metrics log, --write-config), ompml-data (datasets) and
// ompml-predict (predictions). A missing path, an empty file (from mktemp: nothing to lose) or a
// file of the writer's own kind may be replaced; anything else (another kind of ours, a user's
// notes, a directory, a symbolic link to nothing) is refused with one line that names it, unless
// the program's --force says to replace a regular file anyway. A directory is never replaced.
//
// What "own kind" means, per kind (the recognisers below):
//   checkpoint   starts with the checkpoint user block (kCheckpointMagic), or, from older builds,
//                HDF5 with /config format = "ompml-checkpoint"; valid or damaged alike
//   dataset      HDF5 whose root attribute created_by starts with "ompml-data" (a dataset made
//                elsewhere, e.g. with h5py, is a user's file: refused without --force)
//   predictions  HDF5 whose root attribute format is "ompml-predictions"
//   metrics      text whose first line is a JSON object with "record" (or, from older builds,
//                "epoch")
//   config       text whose first line is kConfigMarker
#pragma once

#include <string>

namespace ompml {

enum class FileKind { checkpoint, dataset, predictions, metrics, config };

// "checkpoint", "dataset file", "predictions file", "metrics log", "config file".
const char* kind_name(FileKind kind);

// The first line of every config file ompml-train --write-config writes.
extern const char* const kConfigMarker; // "# ompml-train configuration"

// Why `path` must not be replaced by a file of `kind`, or "" when it may: "is a directory",
// "is a dataset file (it has /train or /test), not an ompml checkpoint", "is not an ompml
// metrics log (not JSON lines)", "is a symbolic link to X, which does not exist" ... With force,
// only what can never be replaced is a problem (a directory, anything but a regular file).
std::string replace_problem(const std::string& path, FileKind kind, bool force = false);

// Throws Error when `path` cannot be written as a `kind` file: its directory is missing or not
// writable, or replace_problem says no. The message is one line:
//   "<what> <path> <problem>: refusing to overwrite it; <way out>"
// where <what> names the flag ("-o", "--checkpoint") and <way out> says what to do (choose
// another path, move the file away, or --force where the program has it).
void check_output(const std::string& path, FileKind kind, const std::string& what, const std::string& way_out,
                  bool force = false);

// The directory checks alone ("" when a file can be created in path's directory), for callers
// with their own wording.
std::string directory_problem(const std::string& path);

} // namespace ompml
