// MpiReduceComm (see mpi_comm.hpp).
#include "parallel/mpi_comm.hpp"

#include "parallel/comm.hpp"
#include "parallel/mpi_check.hpp"

namespace ompml {

MpiReduceComm::MpiReduceComm(MPI_Comm comm, bool fixed_order) : comm_(comm), fixed_order_(fixed_order)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void MpiReduceComm::sum(double* v, int n)
{
    if (fixed_order_)
        split_tree_sum(comm_, v, n);
    else
        allreduce_sum(comm_, v, n);
}

bool MpiReduceComm::any(bool local) { return any_rank(comm_, local); }

void MpiReduceComm::tree_sum(double* v, int n) { split_tree_sum(comm_, v, n); }

} // namespace ompml
