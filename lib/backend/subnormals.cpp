// Subnormal floats on host cores (subnormals.hpp).
#include "backend/subnormals.hpp"

#include "core/check.hpp"

#include <cstdlib>
#include <string_view>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace ompml {
namespace {

#if defined(__x86_64__)
constexpr unsigned kFtzDaz = 0x8040; // MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero
#endif

} // namespace

Subnormals subnormals_from_env()
{
    const char* env = std::getenv("OMPML_SUBNORMALS");
    if (env == nullptr || *env == '\0') return Subnormals::flush;
    const std::string_view v(env);
    if (v == "flush") return Subnormals::flush;
    if (v == "keep") return Subnormals::keep;
    throw Error("OMPML_SUBNORMALS='" + std::string(v) + "': unknown mode (known: flush, keep)");
}

bool set_subnormals(Subnormals mode)
{
#if defined(__x86_64__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(mode == Subnormals::flush ? csr | kFtzDaz : csr & ~kFtzDaz);
    return true;
#else
    return mode == Subnormals::keep;
#endif
}

Subnormals current_subnormals()
{
#if defined(__x86_64__)
    return (_mm_getcsr() & kFtzDaz) == kFtzDaz ? Subnormals::flush : Subnormals::keep;
#else
    return Subnormals::keep;
#endif
}

std::string subnormals_text(Subnormals mode)
{
    return mode == Subnormals::flush ? "flushed to zero (FTZ, DAZ)" : "kept (IEEE)";
}

} // namespace ompml
