// A program for the fault tests: rank 1 fails mid-run while the other ranks wait in a
// gradient reduction. tests/mpi/expect_fast_failure.sh runs it under mpirun and checks that
// the whole job ends non-zero, with the failing rank's message, within a time bound.
//
//   fault_helper MODE [mpi|shm]   the gradient transport the others wait in (default mpi):
//                                 an MPI reduction, or spinning on the shared-memory counters
//   fault_helper abort       rank 1 calls abort_all()          (a failure one rank detects)
//   fault_helper kill        rank 1 raises SIGKILL on itself    (a rank that dies silently)
//   fault_helper collective  rank 1 cannot "open" its file; collective_try() makes every
//                            rank throw the same error and exit 2 through the normal path
//   fault_helper ok          nobody fails (control: the reduction itself completes)
#include "core/buffer.hpp"
#include "core/memory.hpp"
#include "parallel/comm.hpp"
#include "parallel/grad_sum.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace ompml;

int main(int argc, char** argv)
{
    MpiSession mpi(&argc, &argv);
    const std::string mode = argc > 1 ? argv[1] : "";
    const std::string transport = argc > 2 ? argv[2] : "mpi";
    if ((mode != "abort" && mode != "kill" && mode != "collective" && mode != "ok") ||
        (transport != "mpi" && transport != "shm"))
        abort_all("usage: fault_helper abort|kill|collective|ok [mpi|shm]", 2);
    try {
        collective_try(mpi.comm(), [&] {
            if (mode == "collective" && mpi.rank() == 1) throw Error("cannot open 'rank1-only.h5': no such file");
        });
        GradSumOptions opt;
        opt.transport = parse_enum<GradTransport>(transport);
        const std::size_t n = std::size_t{1} << 16;
        const GradSumPlan plan(mpi.comm(), host_memory(), opt);
        DeviceBuffer<float> grad(plan.gradient_memory(), n); // host memory, or the shared window
        const auto sum = plan.make(grad.data(), n);
        if (std::string(sum->kind()) != transport) abort_all(std::string("transport is ") + sum->kind(), 5);
        std::fill(grad.data(), grad.data() + n, 1.0f);
        if (mpi.rank() == 1) {
            // Give the other ranks time to block in the reduction below.
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            if (mode == "abort") abort_all("rank 1 gives up on purpose", 3);
            if (mode == "kill") std::raise(SIGKILL);
        }
        sum->ready(0, n);
        sum->finish();
        if (grad.data()[0] != static_cast<float>(mpi.size()))
            abort_all("wrong sum " + std::to_string(grad.data()[0]), 4);
        if (mpi.root()) std::printf("fault_helper %s: all %d ranks done\n", mode.c_str(), mpi.size());
        return 0;
    } catch (const CollectiveError& e) {
        if (mpi.root()) std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
