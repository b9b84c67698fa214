// What ompml-train's records say about a run (docs/metrics.md): the provenance every record of
// the run carries (the checkpoint's /provenance, the metrics header, the trace's otherData), the
// settings as JSON, and the metrics log's header record.
#pragma once

#include "app/train_setup.hpp"
#include "core/provenance.hpp"
#include "io/metrics.hpp"

namespace ompml {

// The build, this host, its CPU and the backend's device (core/provenance.hpp).
Provenance run_provenance(const MpiSession& mpi, const Backend& be);

// Every setting of the training table and the run options table, by key: integers and reals as
// numbers (floats as the decimal given), booleans as booleans, the rest (enums, layer widths,
// paths) as their text.
JsonRecord settings_json(const TrainConfig& cfg, const TrainOptions& opt);

// The metrics log's first record of a run (a resumed run appends another): what ran, where, on
// which data, from which checkpoint, with which settings.
JsonRecord header_record(const MpiSession& mpi, const TrainRun& run);

} // namespace ompml
