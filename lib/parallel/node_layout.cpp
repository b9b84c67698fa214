// NodeLayout (see node_layout.hpp): nodes and node leaders of a communicator.
#include "parallel/node_layout.hpp"

#include "core/split_tree.hpp"
#include "parallel/mpi_check.hpp"

#include <exception>

namespace ompml {

NodeLayout::NodeLayout(MPI_Comm comm, int fake_node_ranks)
{
    int rank = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &size_));
    if (fake_node_ranks > 0)
        MPI_CHECK(MPI_Comm_split(comm, rank / fake_node_ranks, rank, &node_));
    else
        MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node_));
    MPI_CHECK(MPI_Comm_rank(node_, &local_rank_));
    MPI_CHECK(MPI_Comm_size(node_, &local_size_));
    MPI_CHECK(MPI_Comm_split(comm, local_rank_ == 0 ? 0 : MPI_UNDEFINED, rank, &leaders_));
    // Consecutive: this rank is its leader's rank + its local rank.
    int first = rank;
    MPI_CHECK(MPI_Bcast(&first, 1, MPI_INT, 0, node_));
    // over all ranks: the leaders (a sum), then -min local size, max local size and "not
    // consecutive somewhere" (one max)
    int leaders = local_rank_ == 0 ? 1 : 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &leaders, 1, MPI_INT, MPI_SUM, comm));
    int v[3] = {-local_size_, local_size_, rank == first + local_rank_ ? 0 : 1};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_INT, MPI_MAX, comm));
    nodes_ = leaders;
    min_local_ = -v[0];
    max_local_ = v[1];
    consecutive_ = v[2] == 0;
}

NodeLayout::~NodeLayout()
{
    // Unwinding from an error: the job is ending; MPI_Finalize or MPI_Abort takes them.
    if (std::uncaught_exceptions() > 0) return;
    if (leaders_ != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&leaders_));
    if (node_ != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&node_));
}

bool NodeLayout::composes_split_tree() const
{
    return consecutive_ && min_local_ == max_local_ &&
        split_tree_composes(static_cast<std::size_t>(size_), static_cast<std::size_t>(nodes_));
}

std::string NodeLayout::shape() const
{
    const std::string n = std::to_string(nodes_) + (nodes_ == 1 ? " node" : " nodes");
    if (min_local_ == max_local_ && consecutive_) return n + " x " + std::to_string(max_local_) + " ranks";
    return n + " of " + std::to_string(min_local_) + " to " + std::to_string(max_local_) + " ranks" +
        (consecutive_ ? "" : ", not consecutive");
}

} // namespace ompml
