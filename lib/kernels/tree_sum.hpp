// The fixed summation tree of the reproducible mode (--reproducible-ranks N): the rows of a
// global batch cut into N chunks, each chunk's rows summed in order, and the chunks' sums added
// in the SPLIT TREE over chunk index,
//     T(lo, hi) = T(lo, lo + s) + T(lo + s, hi),  s the largest power of two below hi - lo,
// a balanced binary tree when N is a power of two. A rank that holds the aligned range of N / P
// chunks computes a whole subtree, and the ranks' subtrees are added in the same tree over rank
// index (lib/parallel), so the sum is the same bits on every rank count P dividing N.
//
// KChunks tells a kernel which chunks its rows are; TreeSum adds values one at a time in that
// tree (a binary carry stack: at most log2(n) + 1 partial sums are kept), so a kernel can fold
// chunk sums as they come. Shared by every backend.
#pragma once

#include "core/hd.hpp"

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

// Values added one at a time in the split tree over their order of arrival.
template <class T, int kLevels = 24>
struct TreeSum {
    T level[kLevels];
    int depth = 0;
    long added = 0;

    OMPML_HD void add(T v)
    {
        level[depth++] = v;
        // The carry: after the (k+1)-th value, as many merges as (k+1) has trailing zero bits.
        for (long k = ++added; (k & 1) == 0; k >>= 1) {
            level[depth - 2] = level[depth - 2] + level[depth - 1];
            --depth;
        }
    }
    // The sum of everything added (the right-hand partial sums first: T(lo, hi) splits at the
    // largest power of two, so what is left on the stack is the right edge of the tree).
    OMPML_HD T total() const
    {
        T x = level[depth - 1];
        for (int d = depth - 2; d >= 0; --d) x = level[d] + x;
        return x;
    }
};
#pragma omp end declare target

} // namespace ompml
