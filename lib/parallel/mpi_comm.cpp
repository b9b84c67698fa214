// MpiReduceComm (see mpi_comm.hpp).
#include "parallel/mpi_comm.hpp"

#include "parallel/comm.hpp"
#include "parallel/mpi_check.hpp"

#include <vector>

namespace ompml {

MpiReduceComm::MpiReduceComm(MPI_Comm comm) : comm_(comm)
{
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void MpiReduceComm::sum(double* v, int n) { allreduce_sum(comm_, v, n); }

bool MpiReduceComm::any(bool local) { return any_rank(comm_, local); }

double MpiReduceComm::tree_sum(double local)
{
    if (size_ == 1) return local;
    std::vector<double> all(static_cast<std::size_t>(size_));
    MPI_CHECK(MPI_Allgather(&local, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm_));
    TreeSum<double> t;
    for (const double v : all) t.add(v);
    return t.total();
}

} // namespace ompml
