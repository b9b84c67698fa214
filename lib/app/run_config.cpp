// ompml-train --write-config (run_config.hpp).
#include "app/run_config.hpp"

#include "core/provenance.hpp"
#include "io/atomic_file.hpp"
#include "io/output_target.hpp"
#include "nn/settings.hpp"

#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace ompml {
namespace {

// The shortest decimal that reads back as exactly v (of v's own type).
template <class T>
std::string shortest(T v)
{
    char buf[40];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
        if (static_cast<T>(std::strtod(buf, nullptr)) == v) break;
    }
    return buf;
}

// A TOML basic string: quoted, with backslashes and quotes escaped.
std::string quoted(const std::string& s)
{
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

template <class T>
std::string toml_value(const T& v)
{
    if constexpr (std::is_same_v<T, bool>)
        return v ? "true" : "false";
    else if constexpr (std::is_floating_point_v<T>)
        return shortest(v);
    else if constexpr (std::is_integral_v<T>)
        return std::to_string(v);
    else
        return quoted(value_text(v, true));
}

} // namespace

std::string config_text(const TrainConfig& cfg, const TrainOptions& opt)
{
    const BuildInfo& b = build_info();
    std::string text = std::string(kConfigMarker) + "\n# written by ompml-train " + b.version + " (git " +
        b.git_commit + ", preset " + b.preset + ", " + b.compiler + "); rerun: ompml-train --config FILE\n";
    const auto line = [&](const Spec& s, const auto& v) {
        if (s.flag == nullptr) return; // set by the program, not a flag (beta1, total_steps)
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(v)>, std::string>)
            if (v.empty()) return;
        text += std::string(s.flag + 2) + " = " + toml_value(v) + "\n";
    };
    for_each_train_setting([&](const Spec& s, auto field) { line(s, field(cfg)); });
    for_each_train_option([&](const Spec& s, auto field) { line(s, field(opt)); });
    return text;
}

void write_config(const std::string& path, const TrainConfig& cfg, const TrainOptions& opt)
{
    check_output(path, FileKind::config, "--write-config", "choose another path or move the file away");
    try {
        atomic_file::write_bytes(path, config_text(cfg, opt));
    } catch (const Error& e) {
        throw Error(std::string("--write-config ") + e.what());
    }
}

} // namespace ompml
