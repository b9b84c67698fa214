#include "core/check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ompml {

std::string source_suffix(const char* file, int line)
{
    static const bool wanted = [] {
        const char* v = std::getenv("OMPML_ERROR_SOURCE");
        return v != nullptr && std::strcmp(v, "1") == 0;
    }();
    if (!wanted) return "";
    return std::string(" [at ") + file + ":" + std::to_string(line) + "]";
}

void fail(const char* file, int line, const char* expr, const std::string& detail)
{
    throw Error(std::string(expr) + ": " + detail + source_suffix(file, line));
}

namespace {
// Exponent bits all ones: NaN or +-Inf.
inline std::uint32_t is_non_finite_bits(float v)
{
    std::uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return static_cast<std::uint32_t>((~b & 0x7f800000u) == 0);
}
} // namespace

std::size_t first_non_finite(const float* x, std::size_t n)
{
    // Blocks of 4 KiB: the OR over a block is a branch-free loop the compiler vectorises, and
    // a block found bad is still in L1 when it is searched again for the index.
    constexpr std::size_t kBlock = 1024;
    for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
        const std::size_t end = std::min(n, i0 + kBlock);
        std::uint32_t bad = 0;
        for (std::size_t i = i0; i < end; ++i) bad |= is_non_finite_bits(x[i]);
        if (bad == 0) continue;
        for (std::size_t i = i0; i < end; ++i)
            if (is_non_finite_bits(x[i]) != 0) return i;
    }
    return n;
}

const char* non_finite_name(double v)
{
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return "finite";
}

std::string bytes_text(unsigned long long bytes)
{
    const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(bytes);
    int u = -1;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        ++u;
    }
    std::string s = std::to_string(bytes) + " bytes";
    if (u < 0) return s;
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.1f %s)", v, units[u]);
    return s + buf;
}

} // namespace ompml
