// JSONL metrics writer.
#include "io/metrics.hpp"

#include "core/check.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>

namespace ompml {
namespace {

// %.9g round-trips a float; lr is a float, so 7 digits print it as given (0.001, not 0.00100000005).
std::string num(double v, const char* f = "%.9g")
{
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string extra_fields(const MetricsRecord& r)
{
    std::string out;
    for (const auto& [key, v] : r.extra) out += ", \"" + key + "\": " + num(v);
    return out;
}

} // namespace

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path)
{
    f_ = std::fopen(path.c_str(), append ? "a" : "w");
    if (f_ == nullptr) throw Error("--metrics " + path + ": cannot open for writing: " + std::strerror(errno));
}

MetricsLog::~MetricsLog()
{
    if (f_ != nullptr) std::fclose(f_);
}

std::string MetricsLog::to_json(const MetricsRecord& r)
{
    return "{\"epoch\": " + std::to_string(r.epoch) + ", \"step\": " + std::to_string(r.step) +
        ", \"train_loss\": " + num(r.train_loss) + ", \"test_loss\": " + num(r.test_loss) +
        ", \"test_acc\": " + num(r.test_acc) + ", \"lr\": " + num(static_cast<float>(r.lr), "%.7g") +
        ", \"seconds\": " + num(r.seconds) + ", \"samples_per_s\": " + num(r.samples_per_s) + extra_fields(r) + "}";
}

void MetricsLog::write(const MetricsRecord& r)
{
    const std::string line = to_json(r) + "\n";
    if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
        throw Error(path_ + ": write failed: " + std::strerror(errno));
}

} // namespace ompml
