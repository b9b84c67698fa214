// Is the OpenBLAS anchor at its best? OpenBLAS (DYNAMIC_ARCH builds, as Debian's) picks a kernel
// set ("core") for the CPU at load time, unless OPENBLAS_CORETYPE forces one. Some machines set
// OPENBLAS_CORETYPE=Haswell to dodge bugs of old OpenBLAS builds on new CPUs; on an AVX-512 CPU
// that runs AVX2 kernels, about half the sgemm speed of OpenBLAS 0.3.21's own choice
// (Cooperlake) on a Zen 5, which makes every "x anchor" ratio look better than it is.
// This header only classifies names (no OpenBLAS call), so tests can feed it any core and CPU;
// the openblas anchor (openblas_anchor.cpp) asks OpenBLAS (openblas_get_corename) and the CPU,
// and ompml-bench prints what it ran.
// tools/torch_speed.py holds the same table for PyTorch's OpenBLAS: change both together.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace ompml {

// The widest x86 vector instruction set a core's kernels (or the CPU) use, in order.
enum class Isa { unknown = -1, sse = 0, avx = 1, avx2 = 2, avx512 = 3 };

inline const char* isa_name(Isa i)
{
    switch (i) {
    case Isa::sse: return "SSE";
    case Isa::avx: return "AVX";
    case Isa::avx2: return "AVX2";
    case Isa::avx512: return "AVX-512";
    default: return "unknown";
    }
}

// OpenBLAS's x86_64 core names (driver/others/dynamic.c, as openblas_get_corename() spells
// them; compared without case, as OPENBLAS_CORETYPE is). Unknown names: Isa::unknown.
inline Isa openblas_core_isa(std::string_view core)
{
    struct Entry {
        const char* name;
        Isa isa;
    };
    static constexpr Entry kCores[] = {
        {"SapphireRapids", Isa::avx512},
        {"Cooperlake", Isa::avx512},
        {"SkylakeX", Isa::avx512},
        {"Haswell", Isa::avx2},
        {"Zen", Isa::avx2},
        // Bulldozer's line builds its kernels with AVX (and FMA), not AVX2.
        {"Sandybridge", Isa::avx},
        {"Bulldozer", Isa::avx},
        {"Piledriver", Isa::avx},
        {"Steamroller", Isa::avx},
        {"Excavator", Isa::avx},
        {"Katmai", Isa::sse},
        {"Coppermine", Isa::sse},
        {"Northwood", Isa::sse},
        {"Prescott", Isa::sse},
        {"Banias", Isa::sse},
        {"Atom", Isa::sse},
        {"Core2", Isa::sse},
        {"Penryn", Isa::sse},
        {"Dunnington", Isa::sse},
        {"Nehalem", Isa::sse},
        {"Athlon", Isa::sse},
        {"Opteron", Isa::sse},
        {"Opteron_SSE3", Isa::sse},
        {"Barcelona", Isa::sse},
        {"Nano", Isa::sse},
        {"Bobcat", Isa::sse},
    };
    const auto same = [](std::string_view a, std::string_view b) {
        return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
               });
    };
    for (const Entry& e : kCores)
        if (same(core, e.name)) return e.isa;
    return Isa::unknown;
}

// The widest of these instruction sets this CPU supports (Isa::unknown off x86).
inline Isa cpu_isa()
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2")) return Isa::avx2;
    if (__builtin_cpu_supports("avx")) return Isa::avx;
    return Isa::sse;
#else
    return Isa::unknown;
#endif
}

// The warning when OPENBLAS_CORETYPE (coretype: its value, null or empty when unset) has made
// OpenBLAS run a core below what the CPU supports; "" otherwise (also when either side is
// unknown: no claim without a fact). One line, without the program's prefix.
inline std::string openblas_core_warning(std::string_view core, const char* coretype, Isa cpu)
{
    if (coretype == nullptr || *coretype == '\0') return {};
    const Isa ran = openblas_core_isa(core);
    if (ran == Isa::unknown || cpu == Isa::unknown || ran >= cpu) return {};
    return "OPENBLAS_CORETYPE=" + std::string(coretype) + " makes OpenBLAS run its " + std::string(core) +
        " kernels (" + isa_name(ran) + ") on a CPU with " + isa_name(cpu) +
        ": the openblas anchor is below its best; unset OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for the anchor";
}

} // namespace ompml
