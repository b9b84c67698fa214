// The split tree: the one summation order ompml uses wherever the bits of a sum must not depend
// on how the work was divided (issue 23: the same bits on any number of ranks).
//
// Over an index range [lo, hi), hi > lo:
//     T(lo, lo + 1) = value(lo)
//     T(lo, hi)     = T(lo, m) + T(m, hi),   m = split_tree_mid(lo, hi) = lo + s,
// s the largest power of two strictly below hi - lo. The left part is always a perfect binary tree
// of s leaves; the right part is split again. So for a power-of-two count it is the balanced
// binary tree, and in general the count's binary digits from the top, right-associated:
// n = 6: (T4 + T2), n = 7: (T4 + (T2 + T1)). For 2 and 3 leaves it is the plain left-to-right
// order ((v0 + v1) + v2), which is what the gradient sums over 2 and 3 ranks always did.
//
// Why this tree: a contiguous range of 2^k leaves starting at a multiple of 2^k is a node of it
// (a whole subtree), so whoever holds such a range can sum it alone and hand on one value. With C
// leaves (chunks of the global batch) spread evenly over P ranks, the sum over ranks of each
// rank's own subtree, in the split tree over rank index, is the split tree over all C leaves
// exactly when P = 1 or C / P is a power of two (split_tree_composes): then the bits do not
// depend on P. The model sums its chunks with it inside a rank (TreeSum below, in the kernels); the
// gradient transports (lib/parallel: NodeSum, MpiExchange) sum the ranks with it
// (split_tree_reduce).
//
// split_tree_reduce and the node tests are host code (constexpr, no allocation); TreeSum, the same
// tree built one value at a time, is for every device too.
#pragma once

#include "core/hd.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>

namespace ompml {

// The largest power of two <= x (x >= 1), and whether x is a power of two. Written out rather
// than <bit>'s: the CUDA sources that include this header are C++17.
constexpr std::size_t floor_pow2(std::size_t x)
{
    std::size_t p = 1;
    while (p <= x / 2) p <<= 1;
    return p;
}
constexpr bool is_pow2(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Where T(lo, hi) splits, hi - lo >= 2: lo + the largest power of two strictly below hi - lo.
constexpr std::size_t split_tree_mid(std::size_t lo, std::size_t hi) { return lo + floor_pow2(hi - lo - 1); }

// T(lo, hi) over value(i), hi > lo, each inner node combine(left, right): the split tree, left
// subtree first. The result has value's (decayed) type.
template <class Value, class Combine>
constexpr auto split_tree_reduce(std::size_t lo, std::size_t hi, Value&& value, Combine&& combine)
    -> std::decay_t<decltype(value(lo))>
{
    if (hi - lo == 1) return value(lo);
    const std::size_t mid = split_tree_mid(lo, hi);
    auto left = split_tree_reduce(lo, mid, value, combine);
    auto right = split_tree_reduce(mid, hi, value, combine);
    return combine(std::move(left), std::move(right));
}

// Whether [lo, hi) is a node (a whole subtree) of the split tree over [0, n).
constexpr bool split_tree_node(std::size_t lo, std::size_t hi, std::size_t n)
{
    std::size_t a = 0, b = n;
    while (lo >= a && hi <= b && lo < hi) {
        if (lo == a && hi == b) return true;
        if (b - a < 2) return false;
        const std::size_t m = split_tree_mid(a, b);
        if (hi <= m)
            b = m;
        else if (lo >= m)
            a = m;
        else
            return false; // straddles the split
    }
    return false;
}

// Whether the split tree over n leaves equals, for ANY values, the split tree over `parts` equal
// contiguous parts of it, each part summed by its own split tree: parts == 1, or parts divides n
// and n / parts is a power of two. (For parts >= 2 the first part [0, n / parts) must be a node,
// and the nodes that start at 0 have power-of-two sizes; conversely each split of the parts'
// tree then falls on a part boundary.)
constexpr bool split_tree_composes(std::size_t n, std::size_t parts)
{
    if (parts == 0 || n == 0) return false;
    if (parts == 1) return true;
    return n % parts == 0 && is_pow2(n / parts);
}

#pragma omp declare target
// The split tree over values that arrive one at a time, in index order (a kernel folding chunk
// sums as it computes them): a binary carry stack keeps at most log2(n) + 1 partial sums. After
// the k-th value, as many merges as k has trailing zero bits build the perfect left subtrees;
// total() then adds what is left from the right, which is the split tree's right edge. The same
// bits as split_tree_reduce over the same values (tests/test_split_tree.cpp).
template <class T, int kLevels = 24>
struct TreeSum {
    T level[kLevels];
    int depth = 0;
    long added = 0;

    OMPML_HD void add(T v)
    {
        level[depth++] = v;
        for (long k = ++added; (k & 1) == 0; k >>= 1) {
            level[depth - 2] = level[depth - 2] + level[depth - 1];
            --depth;
        }
    }
    OMPML_HD T total() const // at least one value added
    {
        T x = level[depth - 1];
        for (int d = depth - 2; d >= 0; --d) x = level[d] + x;
        return x;
    }
};
#pragma omp end declare target

} // namespace ompml
