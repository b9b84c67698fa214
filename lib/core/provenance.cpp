// Provenance (provenance.hpp): the build's record (generated) and the machine's.
#include "core/provenance.hpp"

#include <fstream>

namespace ompml {

std::string version_text(const std::string& program)
{
    const BuildInfo& b = build_info();
    return program + " " + b.version + " (git " + b.git_commit + ", preset " + b.preset + ", " + b.compiler +
        ")\nflags: " + b.flags;
}

std::string cpu_model()
{
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) != 0) continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        const std::size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "unknown CPU" : line.substr(start);
    }
    return "unknown CPU";
}

Provenance provenance(const std::string& program, const std::string& host, const std::string& device)
{
    const BuildInfo& b = build_info();
    return {{"program", program},
            {"version", b.version},
            {"git_commit", b.git_commit},
            {"build_preset", b.preset},
            {"build_flags", b.flags},
            {"compiler", b.compiler},
            {"host", host},
            {"cpu", cpu_model()},
            {"device", device}};
}

} // namespace ompml
