// mpi_pingpong: the time of one MPI message and of one MPI_Allreduce as a function of size,
// for a bandwidth-latency fit of a link (tools/linkbench.sh builds and runs it between two
// nodes of the local cluster, and inside one node).
//
//   mpirun -np 2 mpi_pingpong [--min BYTES] [--max BYTES] [--seconds S] [--header]
//
// Rank 0 and rank 1 bounce a message (MPI_Send/MPI_Recv); the time of one message is half a
// round trip. Then all ranks time MPI_Allreduce(MPI_SUM) of BYTES/4 floats. Sizes go from --min
// to --max by factors of 4. Every size is checked first (the bounced bytes come back intact,
// the sum is the sum), then timed: a few warm-up rounds, then single rounds until --seconds
// have passed (at least 5), each timed alone; min and median are kept (the median for fits: a
// loaded machine adds long tails). CSV on rank 0:
//   op,ranks,bytes,reps,min_us,median_us,gbs
// with gbs = bytes / median time (for pingpong: one message, one direction).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg)
{
    std::fprintf(stderr, "mpi_pingpong: %s\n", msg.c_str());
    MPI_Abort(MPI_COMM_WORLD, 2);
    std::exit(2);
}

struct Stats {
    int reps = 0;
    double min_s = 0, median_s = 0;
};

Stats summarize(std::vector<double> t)
{
    std::sort(t.begin(), t.end());
    return {static_cast<int>(t.size()), t.front(), t[t.size() / 2]};
}

// Times fn() (one round) until `seconds` have passed on rank 0 (at least 5 rounds); every rank
// runs the same number of rounds (rank 0 decides, one broadcast per round).
template <class F>
Stats time_rounds(F fn, double seconds, int warmup)
{
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> t;
    const double start = MPI_Wtime();
    for (;;) {
        int more = static_cast<int>(t.size() < 5 || MPI_Wtime() - start < seconds);
        MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (!more) break;
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        fn();
        t.push_back(MPI_Wtime() - t0);
    }
    return summarize(t);
}

void row(const char* op, int ranks, std::size_t bytes, const Stats& s)
{
    std::printf("%s,%d,%zu,%d,%.3f,%.3f,%.4f\n", op, ranks, bytes, s.reps, 1e6 * s.min_s, 1e6 * s.median_s,
                static_cast<double>(bytes) / s.median_s / 1e9);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::size_t lo = 4, hi = std::size_t{64} << 20;
    double seconds = 0.5;
    bool header = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--min")
            lo = std::stoull(value());
        else if (a == "--max")
            hi = std::stoull(value());
        else if (a == "--seconds")
            seconds = std::stod(value());
        else if (a == "--header")
            header = true;
        else
            die("unknown argument '" + a + "' (--min BYTES --max BYTES --seconds S --header)");
    }
    if (size < 2) die("needs at least 2 ranks");
    if (lo < 4 || hi < lo) die("need 4 <= --min <= --max");
    if (rank == 0 && header) std::printf("op,ranks,bytes,reps,min_us,median_us,gbs\n");

    std::vector<char> buf(hi);
    std::vector<float> x(hi / 4), y(hi / 4);
    for (std::size_t bytes = lo; bytes <= hi; bytes *= 4) {
        const int n = static_cast<int>(bytes);
        // ping-pong between ranks 0 and 1; the others wait at the barriers
        auto bounce = [&] {
            if (rank == 0) {
                MPI_Send(buf.data(), n, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
                MPI_Recv(buf.data(), n, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                MPI_Recv(buf.data(), n, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(buf.data(), n, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
            }
        };
        for (std::size_t i = 0; i < bytes; ++i) buf[i] = static_cast<char>((i * 131 + bytes) & 0x7f);
        bounce();
        int bad = 0;
        for (std::size_t i = 0; i < bytes && rank <= 1; ++i)
            bad |= buf[i] != static_cast<char>((i * 131 + bytes) & 0x7f);
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
        if (bad) die("ping-pong of " + std::to_string(bytes) + " bytes came back changed");
        Stats s = time_rounds(bounce, seconds, 3);
        s.min_s /= 2; // one message: half a round trip
        s.median_s /= 2;
        if (rank == 0) row("pingpong", 2, bytes, s);

        const int count = n / 4;
        for (int i = 0; i < count; ++i) x[i] = static_cast<float>((i % 7) + rank); // small integers: exact sums
        auto reduce = [&] { MPI_Allreduce(x.data(), y.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); };
        reduce();
        for (int i = 0; i < count; ++i) bad |= y[i] != static_cast<float>(size * (i % 7) + size * (size - 1) / 2);
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
        if (bad) die("MPI_Allreduce of " + std::to_string(count) + " floats gave a wrong sum");
        s = time_rounds(reduce, seconds, 3);
        if (rank == 0) row("allreduce", size, bytes, s);
    }
    MPI_Finalize();
    return 0;
}
