// NodeLayout: which ranks of a communicator share a node, found once (collective) for the
// gradient-sum plan: each node's communicator, the communicator of the node leaders (local rank
// 0 of each node, in rank order), and the shape that decides whether a sum in two levels (the
// node's ranks, then the nodes) is the split tree over all ranks (core/split_tree.hpp).
//
// Nodes are MPI's (MPI_Comm_split_type MPI_COMM_TYPE_SHARED), or, for tests on one machine,
// groups of `fake_node_ranks` consecutive ranks (rank / fake_node_ranks): the ranks of a fake
// node really share memory, so everything but the network runs as on several nodes.
#pragma once

#include <mpi.h>

#include <string>

namespace ompml {

class NodeLayout {
public:
    // Collective over comm. fake_node_ranks > 0: nodes of that many consecutive ranks (tests).
    explicit NodeLayout(MPI_Comm comm, int fake_node_ranks = 0);
    ~NodeLayout(); // frees the communicators, except while unwinding from an error
    NodeLayout(const NodeLayout&) = delete;
    NodeLayout& operator=(const NodeLayout&) = delete;

    MPI_Comm node_comm() const { return node_; }      // this rank's node, local rank order = rank order
    MPI_Comm leader_comm() const { return leaders_; } // the node leaders; MPI_COMM_NULL on the others
    bool leader() const { return local_rank_ == 0; }
    int local_rank() const { return local_rank_; }
    int local_size() const { return local_size_; }
    int nodes() const { return nodes_; }
    int ranks() const { return size_; }
    // Some node holds more than one rank (a node-level sum has something to add).
    bool shared_nodes() const { return max_local_ > 1; }
    // The two-level sum (each node's ranks in their split tree, then the node sums in the split
    // tree over nodes) is the split tree over all ranks: every node's ranks are consecutive and
    // every node has the same count, with split_tree_composes(ranks, nodes).
    bool composes_split_tree() const;
    // "2 nodes x 2 ranks", or "3 nodes of 1 to 2 ranks, not consecutive": for reports and errors.
    std::string shape() const;

private:
    MPI_Comm node_ = MPI_COMM_NULL, leaders_ = MPI_COMM_NULL;
    int size_ = 1, local_rank_ = 0, local_size_ = 1, nodes_ = 1, min_local_ = 1, max_local_ = 1;
    bool consecutive_ = true; // every node's ranks are consecutive in comm
};

} // namespace ompml
