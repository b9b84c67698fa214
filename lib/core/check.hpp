// Errors and checks: one exception type, one [[noreturn]] reporter, one check macro per API.
// User-facing errors (bad flag, bad file, bad size) throw ompml::Error with a one-line message
// that names the offending thing; drivers catch it, print it and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace ompml {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws Error("file:line: expr: detail"). Used by the *_CHECK macros for failed API calls.
[[noreturn]] void fail(const char* file, int line, const char* expr, const std::string& detail);

// Throws Error(message) when cond is false: argument validation with a readable message.
inline void require(bool cond, const std::string& message)
{
    if (!cond) throw Error(message);
}

} // namespace ompml

// An internal invariant or an API call that must succeed.
#define OMPML_CHECK(cond, detail)                                             \
    do {                                                                      \
        if (!(cond)) ::ompml::fail(__FILE__, __LINE__, #cond, (detail));      \
    } while (0)
