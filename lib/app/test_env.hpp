// Test-only environment variables of ompml-train (used by tests/mpi/ and tests/slurm/, not for
// users), read in one place:
//   OMPML_FAULT_INJECT=RANK:STEP:exit|kill   after step STEP, rank RANK throws an error that
//                                            only it sees (exit) or SIGKILLs itself (kill)
//   OMPML_TEST_PER_RANK_DATA=1               "%r" in --data becomes the rank number, to give
//                                            one rank a dataset path the others do not have
//   OMPML_TEST_HOLD_AT_STEP=N                after step N (and its checkpoint, if one is due)
//                                            print "test hold: step N, waiting for a stop
//                                            signal" and wait for SIGUSR1/SIGTERM on any rank,
//                                            so a signal test can never finish before its signal
#pragma once

#include <cstdint>
#include <string>

namespace ompml::test_env {

struct FaultInject {
    int rank = -1;
    std::int64_t step = -1;
    std::string mode; // "exit" or "kill"
};
FaultInject fault_inject(); // Error on a malformed value

// The rank's dataset path under OMPML_TEST_PER_RANK_DATA, else path itself.
std::string per_rank_path(std::string path, int rank);

// OMPML_TEST_HOLD_AT_STEP, or -1.
std::int64_t hold_step();

// The test-only hooks of ompml-train's loop (the run policy calls them; nothing else knows them).
class TestHook {
public:
    explicit TestHook(int rank) : rank_(rank) {}
    // OMPML_FAULT_INJECT: after this rank's step `step`, throw or SIGKILL itself.
    void after_step(std::int64_t step) const;
    // OMPML_TEST_HOLD_AT_STEP: at that step boundary, print "test hold: ..." (rank 0) and wait
    // until stop_asked() (a collective: every rank calls it in the same turns) says a stop
    // signal came; true when it held (the run then stops), false at every other step.
    template <class StopAsked>
    bool hold(std::int64_t step, StopAsked&& stop_asked) const
    {
        if (step != hold_) return false;
        announce_hold(step);
        while (!stop_asked()) nap();
        return true;
    }

private:
    void announce_hold(std::int64_t step) const;
    static void nap(); // 10 ms: the signal arrives from outside
    int rank_;
    FaultInject fault_ = fault_inject();
    std::int64_t hold_ = hold_step();
};

} // namespace ompml::test_env
