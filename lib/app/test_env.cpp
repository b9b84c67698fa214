// Test-only environment (test_env.hpp).
#include "app/test_env.hpp"

#include "core/check.hpp"
#include "core/parse_int.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ompml::test_env {

FaultInject fault_inject()
{
    FaultInject f;
    const char* v = std::getenv("OMPML_FAULT_INJECT");
    if (v == nullptr || *v == '\0') return f;
    const std::string s = v;
    const auto c1 = s.find(':');
    const auto c2 = c1 == std::string::npos ? c1 : s.find(':', c1 + 1);
    const bool ok = c2 != std::string::npos && parse_int(s.substr(0, c1), f.rank, 0).empty() &&
        parse_int(s.substr(c1 + 1, c2 - c1 - 1), f.step, std::int64_t{1}).empty();
    f.mode = ok ? s.substr(c2 + 1) : "";
    if (f.mode != "exit" && f.mode != "kill")
        throw Error("OMPML_FAULT_INJECT='" + s + "': expected RANK:STEP:exit|kill");
    return f;
}

std::string per_rank_path(std::string path, int rank)
{
    if (std::getenv("OMPML_TEST_PER_RANK_DATA") == nullptr) return path;
    for (std::size_t p; (p = path.find("%r")) != std::string::npos;) path.replace(p, 2, std::to_string(rank));
    return path;
}

std::int64_t hold_step()
{
    const char* v = std::getenv("OMPML_TEST_HOLD_AT_STEP");
    std::int64_t step = -1;
    if (v == nullptr || *v == '\0') return step;
    const std::string err = parse_int(std::string(v), step, std::int64_t{1});
    if (!err.empty()) throw Error("OMPML_TEST_HOLD_AT_STEP: " + err);
    return step;
}

void TestHook::after_step(std::int64_t step) const
{
    if (fault_.rank != rank_ || fault_.step != step) return;
    if (fault_.mode == "kill") std::raise(SIGKILL);
    throw Error("OMPML_FAULT_INJECT: rank " + std::to_string(rank_) + " fails on purpose after step " +
                std::to_string(step));
}

void TestHook::announce_hold(std::int64_t step) const
{
    if (rank_ == 0) std::printf("test hold: step %lld, waiting for a stop signal\n", static_cast<long long>(step));
    std::fflush(stdout);
}

void TestHook::nap() { std::this_thread::sleep_for(std::chrono::milliseconds(10)); }

} // namespace ompml::test_env
