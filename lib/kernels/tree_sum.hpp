// The fixed summation tree of the reproducible mode (--reproducible-ranks N): the rows of a
// global batch cut into N chunks, each chunk's rows summed in order, and the chunks' sums added
// in the SPLIT TREE over chunk index (core/split_tree.hpp), a balanced binary tree when N is a
// power of two. A rank that holds the aligned range of N / P
// chunks computes a whole subtree, and the ranks' subtrees are added in the same tree over rank
// index (lib/parallel), so the sum is the same bits on every rank count P dividing N.
//
// KChunks tells a kernel which chunks its rows are; TreeSum (core/split_tree.hpp) adds values one
// at a time in that tree, so a kernel can fold chunk sums as they come. Shared by every backend.
#pragma once

#include "core/hd.hpp"
#include "core/split_tree.hpp"

namespace ompml {

// The chunks of a global batch of `rows` rows: chunk c holds rows [c rows / chunks, (c + 1) rows
// / chunks). A kernel's rows (its K, or its row count) are the chunks [first, first + count),
// counted from row(first). chunks == 0: no chunking (one in-order sum over all rows).
struct KChunks {
    long rows = 0;
    int chunks = 0;
    int first = 0, count = 0;
};

#pragma omp declare target
// Row where chunk `first + c` begins, relative to chunk `first`.
OMPML_HD inline long chunk_row(const KChunks& k, int c)
{
    return (k.first + c) * k.rows / k.chunks - k.first * k.rows / k.chunks;
}

#pragma omp end declare target

} // namespace ompml
