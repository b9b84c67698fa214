// Wall-clock stopwatch (steady clock). Time device work only after Backend::synchronize().
#pragma once

#include <chrono>

namespace ompml {

class Stopwatch {
public:
    Stopwatch() : start_(Clock::now()) {}
    void restart() { start_ = Clock::now(); }
    double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
    double millis() const { return seconds() * 1e3; }

private:
    using Clock = std::chrono::steady_clock;
    Clock::time_point start_;
};

} // namespace ompml
