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

} // namespace ompml::test_env
