#include "core/check.hpp"

namespace ompml {

void fail(const char* file, int line, const char* expr, const std::string& detail)
{
    throw Error(std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " + detail);
}

} // namespace ompml
