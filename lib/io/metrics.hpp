// Metrics log: one JSON object per line (JSONL), one line per epoch, flushed at once so a
// running job can be followed with `tail -f` and read by pandas.read_json(lines=True).
//   {"epoch": 1, "step": 469, "train_loss": 0.52, "test_loss": 0.43, "test_acc": 0.846,
//    "lr": 0.001, "seconds": 8.1, "samples_per_s": 7400.2}
// epoch counts completed epochs (1-based); seconds is the cumulative training time; a value
// that is not finite is written as null.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace ompml {

struct MetricsRecord {
    std::int64_t epoch = 0, step = 0;
    double train_loss = 0.0, test_loss = 0.0, test_acc = 0.0;
    double lr = 0.0, seconds = 0.0, samples_per_s = 0.0;
    // More numeric fields, appended in this order (e.g. comm_s and compute_s of a
    // data-parallel run, for the scaling study).
    std::vector<std::pair<std::string, double>> extra;
};

class MetricsLog {
public:
    // append: keep existing lines (resume; a symbolic link at path is refused); otherwise start an
    // empty file, which replaces what was at path (io/atomic_file.hpp). Throws Error naming path.
    MetricsLog(const std::string& path, bool append);
    ~MetricsLog();
    MetricsLog(const MetricsLog&) = delete;
    MetricsLog& operator=(const MetricsLog&) = delete;

    void write(const MetricsRecord& r);
    static std::string to_json(const MetricsRecord& r);

private:
    std::string path_;
    std::FILE* f_ = nullptr;
};

} // namespace ompml
