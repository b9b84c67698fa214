// MpiReduceComm: the trainer's reduction seam (Comm, lib/nn/trainer.hpp) over MPI: rank, size,
// the sum of a few doubles (loss sums, counts) and the stop flag. The gradient sum is not here:
// the model's gradient goes through a GradientSum (parallel/grad_sum.hpp). fixed_order: the sums
// follow the split tree over rank index (split_tree_sum, comm.hpp), as the fixed-order gradient
// sums do, instead of MPI_Allreduce's order.
#pragma once

#include "nn/trainer.hpp"

#include <mpi.h>

namespace ompml {

class MpiReduceComm : public Comm {
public:
    explicit MpiReduceComm(MPI_Comm comm, bool fixed_order = false);
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    void sum(double* v, int n) override;      // one MPI_Allreduce of n doubles (fixed_order: MPI_Allgather)
    bool any(bool local) override;            // one MPI_Allreduce of an int
    void tree_sum(double* v, int n) override; // one MPI_Allgather of n doubles, added in the split tree

protected:
    MPI_Comm comm_;

private:
    int rank_ = 0, size_ = 1;
    bool fixed_order_ = false;
};

} // namespace ompml
