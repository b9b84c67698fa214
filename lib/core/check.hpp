// Errors and checks: one exception type, one [[noreturn]] reporter, one check macro per API.
// User-facing errors (bad flag, bad file, bad size) throw ompml::Error with a one-line message
// that names the offending thing; drivers catch it, print it and exit non-zero.
//
// Messages name the user's things (files, datasets, flags, values), never our source files:
// a user cannot act on "lib/io/h5.cpp:284". The *_CHECK macros still pass __FILE__/__LINE__ to
// the reporter, which appends them only when the environment sets OMPML_ERROR_SOURCE=1 (for
// developers chasing an internal failure).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace ompml {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// An Error whose cause is a failed system call (its errno): a caller that knows what was being
// done may say it in its own words with the cause alone, strerror(code()) ("No space left on
// device"), instead of the layers' text (a checkpoint write on a full disk).
class SystemError : public Error {
public:
    SystemError(const std::string& msg, int code) : Error(msg), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

// Throws Error("expr: detail"), plus " [at file:line]" under OMPML_ERROR_SOURCE=1. Used by the
// *_CHECK macros for failed API calls.
[[noreturn]] void fail(const char* file, int line, const char* expr, const std::string& detail);

// " [at file:line]" when OMPML_ERROR_SOURCE=1 is set, else "": for reporters that build their
// own message (MPI's, HDF5's) and must follow the same rule.
std::string source_suffix(const char* file, int line);

// Throws Error(message) when cond is false: argument validation with a readable message.
inline void require(bool cond, const std::string& message)
{
    if (!cond) throw Error(message);
}

// Index of the first NaN or +-Inf in x[0, n), or n when all are finite. One read of the data,
// vectorised (the test is on the exponent bits, so it also holds under -ffinite-math-only);
// the exact index is searched only inside the block that has one.
std::size_t first_non_finite(const float* x, std::size_t n);

// "nan", "inf" or "-inf" for a non-finite value (messages).
const char* non_finite_name(double v);

// "536870912 bytes (512.0 MiB)": a size asked for, in messages about allocations.
std::string bytes_text(unsigned long long bytes);

} // namespace ompml

// An internal invariant or an API call that must succeed.
#define OMPML_CHECK(cond, detail)                                                                                      \
    do {                                                                                                               \
        if (!(cond)) ::ompml::fail(__FILE__, __LINE__, #cond, (detail));                                               \
    } while (0)
