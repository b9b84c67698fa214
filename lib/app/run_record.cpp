// ompml-train's run records (run_record.hpp).
#include "app/run_record.hpp"

#include "nn/settings.hpp"

#include <ctime>
#include <type_traits>

namespace ompml {
namespace {

template <class T>
void put_setting(JsonRecord& out, const char* key, const T& v)
{
    if constexpr (std::is_same_v<T, bool>)
        out[key] = v;
    else if constexpr (std::is_floating_point_v<T>)
        out[key] = sizeof(T) == 4 ? json_float(static_cast<float>(v)) : static_cast<double>(v);
    else if constexpr (std::is_integral_v<T>)
        out[key] = v;
    else
        out[key] = value_text(v, true);
}

// "2026-12-06T14:50:00Z": when the record was made (UTC).
std::string utc_now()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace

Provenance run_provenance(const MpiSession& mpi, const Backend& be)
{
    return provenance("ompml-train", mpi.processor(), std::string(be.name()) + " on " + be.device());
}

JsonRecord settings_json(const TrainConfig& cfg, const TrainOptions& opt)
{
    JsonRecord out = JsonRecord::object();
    for_each_train_setting([&](const Spec& s, auto field) { put_setting(out, s.key, field(cfg)); });
    for_each_train_option([&](const Spec& s, auto field) { put_setting(out, s.key, field(opt)); });
    return out;
}

JsonRecord header_record(const MpiSession& mpi, const TrainRun& run)
{
    JsonRecord r;
    r["record"] = "header";
    for (const auto& [key, value] : run_provenance(mpi, *run.be)) r[key] = value;
    r["started"] = utc_now();
    r["ranks"] = mpi.size();
    r["resumed_from"] = run.resume.path.empty() ? JsonRecord(nullptr) : JsonRecord(run.resume.path);
    r["resumed_at_step"] = run.resume.start().step;
    r["data"] = run.data.desc.path;
    r["data_fingerprint"] = run.data.fingerprint;
    r["steps_per_epoch"] = run.data.train->steps_per_epoch();
    r["params"] = run.step.step->model().num_params();
    r["settings"] = settings_json(run.cfg, run.opt);
    return r;
}

} // namespace ompml
