// ompml-eval: loss, accuracy and the confusion matrix of a checkpoint on a dataset split.
//
//   ompml-eval --checkpoint run.h5 [--data FILE.h5] [--split test|train] [--backend omp]
//
// --data defaults to the dataset path stored in the checkpoint. Under mpirun each rank
// evaluates its slice of every batch and the sums are reduced; rank 0 prints. The steps are
// lib/app/eval.hpp.
#include "app/eval.hpp"

using namespace ompml;

int main(int argc, char** argv)
{
    MpiSession mpi(&argc, &argv); // outside: see run_on_every_rank
    return run_on_every_rank(mpi, "ompml-eval", [&] {
        EvalOptions opt;
        if (const auto rc = parse_eval_flags(argc, argv, mpi.root(), opt)) return *rc;
        const EvalReport r = run_eval(mpi, opt);
        if (mpi.root()) print_eval(r, mpi.size());
        return 0;
    });
}
