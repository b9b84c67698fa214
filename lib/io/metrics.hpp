// Metrics log (schema: docs/metrics.md): one JSON object per line (JSONL), flushed at once, so a
// running job can be followed with `tail -f` and read by pandas.read_json(lines=True) or
// tools/plot_metrics.py.
// Every line is a record whose "record" field says its kind: "header" (what ran: provenance,
// settings), "step" (--metrics-every), "epoch", "end" (how the run ended, the final evaluation).
// The fields of each kind are documented in docs/metrics.md; a value that is not finite is
// written as null. The records are built with nlohmann::json (so every string, a host name or
// a path, is escaped correctly) in the order their fields are added.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace ompml {

using JsonRecord = nlohmann::ordered_json;

// A float as the decimal it was given as (lr 0.001 rather than 0.0010000000474974513): the
// shortest text that reads back as the same float, as a double.
double json_float(float v);

class MetricsLog {
public:
    // append: keep existing lines (resume; a symbolic link at path is refused); otherwise start an
    // empty file, which replaces what was at path (io/atomic_file.hpp). Throws Error naming path.
    MetricsLog(const std::string& path, bool append);
    ~MetricsLog();
    MetricsLog(const MetricsLog&) = delete;
    MetricsLog& operator=(const MetricsLog&) = delete;

    // One line: the record, compact, and a newline; flushed.
    void write(const JsonRecord& record);

private:
    std::string path_;
    std::FILE* f_ = nullptr;
};

} // namespace ompml
