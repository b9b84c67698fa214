// What built this program and what it runs on, for the records a run leaves (the checkpoint's
// /provenance, the metrics log's header record, the trace's otherData) and for every program's
// --version: the version, the git commit (with "-dirty" when tracked files had uncommitted
// changes), the build preset and compile flags, the compiler, the host and its CPU model. The
// build's part is generated at build time (cmake/build_info.cmake; Makefile.hpc likewise).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ompml {

struct BuildInfo {
    const char* version;    // "0.1.0" (CMakeLists.txt's project version)
    const char* git_commit; // "1a2b3c4d5e6f", "1a2b3c4d5e6f-dirty", or "unknown" (no git checkout)
    const char* preset;     // "host", "offload-check", "gpu", "Makefile.hpc", or "none" (plain cmake)
    const char* compiler;   // "Clang 19.1.7"
    const char* flags;      // the C++ compile flags, OpenMP offload flags included
};
const BuildInfo& build_info();

// "ompml-train 0.1.0 (git 1a2b3c4d5e6f, preset host, Clang 19.1.7)\nflags: -O3 ... -fopenmp"
std::string version_text(const std::string& program);

// The CPU's model name ("AMD EPYC 9R45 ..."), from /proc/cpuinfo; "unknown CPU" elsewhere.
std::string cpu_model();

// The record of a run, in a fixed order: program, version, git_commit, build_preset, build_flags,
// compiler, host, cpu, device (what the backend runs on: the GPU's name on a GPU).
using Provenance = std::vector<std::pair<std::string, std::string>>;
Provenance provenance(const std::string& program, const std::string& host, const std::string& device);

} // namespace ompml
