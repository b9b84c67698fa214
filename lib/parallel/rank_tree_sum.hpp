// RankTreeSum<G>: elementwise sums over the P ranks' copies of a gradient range, in the split-tree
// order over rank index (core/split_tree.hpp), accumulated in float: every element is
//     T(0, P) of float(x_r),   T(lo, hi) = T(lo, m) + T(m, hi),   m = split_tree_mid(lo, hi)
// ((x0 + x1) + x2 for P = 3, (x0 + x1) + (x2 + x3) for P = 4). The shared-memory sum (NodeSum)
// and the owner's sum of the MPI exchange (MpiExchange) both call it, so they compute the same
// bits.
//
// Block by block (kBlock elements, 8 KB of float: the block accumulators stay in L1): a subtree of
// two leaves is one pass (out = x_a + x_b), a right leaf is added into the left subtree's block,
// and a right subtree of more leaves goes into a scratch block that is then added. Per element
// that is P - 1 additions and at most as many passes over the block as the running sum in rank
// order took (P = 2: one pass instead of two; P = 4: three instead of four).
#pragma once

#include "core/bf16.hpp"
#include "core/split_tree.hpp"

#include <cstddef>
#include <vector>

namespace ompml {

template <class G>
class RankTreeSum {
public:
    static constexpr std::size_t kBlock = 2048; // elements per pass

    explicit RankTreeSum(std::size_t P) : P_(P), scratch_(kBlock * scratch_blocks(0, P)) {}

    // out[j] = T(0, P) of float(src[r][off + j]), j < m <= kBlock. out: (m) floats that overlap
    // no source.
    void block(const G* const* src, std::size_t off, std::size_t m, float* out)
    {
        sum(src, off, m, 0, P_, out, scratch_.data());
    }

private:
    // Scratch blocks T(lo, hi) needs beyond its output block.
    static std::size_t scratch_blocks(std::size_t lo, std::size_t hi)
    {
        if (hi - lo <= 2) return 0;
        const std::size_t mid = split_tree_mid(lo, hi);
        const std::size_t left = scratch_blocks(lo, mid);
        const std::size_t right = hi - mid == 1 ? 0 : 1 + scratch_blocks(mid, hi);
        return left > right ? left : right;
    }

    // out = T(lo, hi) over elements [off, off + m); scratch: scratch_blocks(lo, hi) blocks.
    static void sum(const G* const* src, std::size_t off, std::size_t m, std::size_t lo, std::size_t hi, float* out,
                    float* scratch)
    {
        if (hi - lo == 1) {
            const G* a = src[lo] + off;
#pragma omp simd
            for (std::size_t j = 0; j < m; ++j) out[j] = to_float(a[j]);
            return;
        }
        if (hi - lo == 2) {
            const G* a = src[lo] + off;
            const G* b = src[lo + 1] + off;
#pragma omp simd
            for (std::size_t j = 0; j < m; ++j) out[j] = to_float(a[j]) + to_float(b[j]);
            return;
        }
        const std::size_t mid = split_tree_mid(lo, hi);
        sum(src, off, m, lo, mid, out, scratch);
        if (hi - mid == 1) {
            const G* b = src[mid] + off;
#pragma omp simd
            for (std::size_t j = 0; j < m; ++j) out[j] += to_float(b[j]);
            return;
        }
        sum(src, off, m, mid, hi, scratch, scratch + kBlock);
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) out[j] += scratch[j];
    }

    std::size_t P_;
    std::vector<float> scratch_; // (scratch_blocks(0, P), kBlock)
};

} // namespace ompml
