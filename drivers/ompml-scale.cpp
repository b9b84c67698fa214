// ompml-scale: one point of the scaling study (compute against communication per training step
// on P MPI ranks; lib/app/scale.hpp says what is timed and how). tools/scaling.sh runs it over
// ranks, threads and widths.
//
//   mpirun -np 2 --bind-to none ompml-scale --mode weak --layers 784,2048,2048,10 --batch 128 --csv --header
#include "app/scale.hpp"

using namespace ompml;

int main(int argc, char** argv)
{
    MpiSession mpi(&argc, &argv); // outside: see run_on_every_rank
    return run_on_every_rank(mpi, "ompml-scale", [&] {
        ScaleOptions opt;
        if (const auto rc = parse_scale_flags(argc, argv, mpi.root(), opt)) return *rc;
        const ScalePoint p = run_scale(mpi, opt);
        if (mpi.root()) opt.csv ? print_scale_csv(opt, p) : print_scale_report(opt, p);
        return 0;
    });
}
