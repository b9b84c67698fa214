// core/split_tree.hpp: the split point, the tree's shape written out for small counts, the
// reduction's order (checked with a non-associative combine that records the shape), which
// ranges are nodes, and when the tree over parts composes into the tree over all leaves (checked
// against the shapes themselves, for every n and parts up to 64).
#define BOOST_TEST_MODULE split_tree
#include "core/split_tree.hpp"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace ompml;

namespace {

// The tree over [lo, hi) as a string of leaf numbers: "((0+1)+2)".
std::string shape(std::size_t lo, std::size_t hi)
{
    return split_tree_reduce(
        lo, hi, [](std::size_t i) { return std::to_string(i); },
        [](const std::string& a, const std::string& b) { return "(" + a + "+" + b + ")"; });
}

// The tree over `parts` equal parts of [0, n), each part's own tree as a leaf.
std::string composed(std::size_t n, std::size_t parts)
{
    const std::size_t k = n / parts;
    return split_tree_reduce(
        0, parts, [&](std::size_t p) { return shape(p * k, (p + 1) * k); },
        [](const std::string& a, const std::string& b) { return "(" + a + "+" + b + ")"; });
}

} // namespace

BOOST_AUTO_TEST_CASE(mid_is_the_largest_power_of_two_below_the_count)
{
    static_assert(split_tree_mid(0, 2) == 1 && split_tree_mid(0, 3) == 2 && split_tree_mid(0, 4) == 2);
    static_assert(split_tree_mid(0, 5) == 4 && split_tree_mid(0, 8) == 4 && split_tree_mid(0, 9) == 8);
    static_assert(split_tree_mid(10, 16) == 14 && split_tree_mid(3, 1027) == 3 + 512);
    for (std::size_t n = 2; n <= 4096; ++n) {
        const std::size_t s = split_tree_mid(100, 100 + n) - 100;
        BOOST_REQUIRE((s & (s - 1)) == 0 && s < n && 2 * s >= n); // a power of two, the largest below n
    }
}

BOOST_AUTO_TEST_CASE(shapes_written_out)
{
    BOOST_CHECK_EQUAL(shape(0, 1), "0");
    BOOST_CHECK_EQUAL(shape(0, 2), "(0+1)");
    BOOST_CHECK_EQUAL(shape(0, 3), "((0+1)+2)"); // the left-to-right order of 2 and 3 ranks
    BOOST_CHECK_EQUAL(shape(0, 4), "((0+1)+(2+3))");
    BOOST_CHECK_EQUAL(shape(0, 5), "(((0+1)+(2+3))+4)");
    BOOST_CHECK_EQUAL(shape(0, 6), "(((0+1)+(2+3))+(4+5))");
    BOOST_CHECK_EQUAL(shape(0, 7), "(((0+1)+(2+3))+((4+5)+6))");
    BOOST_CHECK_EQUAL(shape(0, 8), "(((0+1)+(2+3))+((4+5)+(6+7)))");
    BOOST_CHECK_EQUAL(shape(4, 7), "((4+5)+6)");
}

BOOST_AUTO_TEST_CASE(float_sums_follow_the_tree)
{
    // 1 + 2^-24 + 2^-24 + 2^-24: left to right each tiny term is lost; in the split tree over 4
    // (1 + 2^-24) + (2^-24 + 2^-24) = 1 + 2^-23 (the pair of tiny terms is exact).
    const std::vector<float> v{1.0f, 0x1p-24f, 0x1p-24f, 0x1p-24f};
    const float tree =
        split_tree_reduce(0, v.size(), [&](std::size_t i) { return v[i]; }, [](float a, float b) { return a + b; });
    BOOST_CHECK_EQUAL(tree, 1.0f + 0x1p-23f);
    float left = v[0];
    for (std::size_t i = 1; i < v.size(); ++i) left += v[i];
    BOOST_CHECK_EQUAL(left, 1.0f);
    static_assert(split_tree_reduce(
                      0, 10, [](std::size_t i) { return static_cast<int>(i); }, [](int a, int b) { return a + b; }) ==
                  45);
}

// TreeSum, the tree built one value at a time (what the kernels fold chunk sums with), is the same
// tree as split_tree_reduce: the same bits for every count up to 64, on values whose float sum
// depends on the order (a large value, small ones, cancellations).
BOOST_AUTO_TEST_CASE(tree_sum_is_split_tree_reduce)
{
    for (std::size_t n = 1; n <= 64; ++n) {
        std::vector<float> v(n);
        for (std::size_t i = 0; i < n; ++i)
            v[i] = (i % 7 == 0 ? 1.0f : 0x1p-24f) * static_cast<float>(1 + i % 3) * (i % 5 == 4 ? -1.0f : 1.0f);
        TreeSum<float> t;
        for (const float x : v) t.add(x);
        const float want =
            split_tree_reduce(0, n, [&](std::size_t i) { return v[i]; }, [](float a, float b) { return a + b; });
        const float got = t.total();
        BOOST_CHECK_MESSAGE(std::memcmp(&got, &want, sizeof got) == 0,
                            n << " values: TreeSum " << got << ", split_tree_reduce " << want);
    }
    // And TreeSum's shape written out, for a count that is not a power of two.
    struct Shape {
        std::string s;
        Shape operator+(const Shape& o) const { return {"(" + s + "+" + o.s + ")"}; }
    };
    TreeSum<Shape> t;
    for (int i = 0; i < 7; ++i) t.add(Shape{std::to_string(i)});
    BOOST_CHECK_EQUAL(t.total().s, "(((0+1)+(2+3))+((4+5)+6))");
}

BOOST_AUTO_TEST_CASE(nodes)
{
    BOOST_CHECK(split_tree_node(0, 6, 6));
    BOOST_CHECK(split_tree_node(0, 4, 6) && split_tree_node(4, 6, 6) && split_tree_node(2, 4, 6));
    BOOST_CHECK(split_tree_node(5, 6, 6));
    BOOST_CHECK(!split_tree_node(0, 3, 6) && !split_tree_node(3, 6, 6) && !split_tree_node(1, 3, 6));
    BOOST_CHECK(!split_tree_node(0, 0, 6) && !split_tree_node(5, 7, 6));
    BOOST_CHECK(split_tree_node(8, 12, 12) && !split_tree_node(6, 12, 12));
}

BOOST_AUTO_TEST_CASE(composes_exactly_when_the_shapes_agree)
{
    // C chunks on P ranks: the ranks' tree over their own subtrees is the tree over all chunks iff
    // split_tree_composes(C, P). 4 chunks on 2 ranks yes, 6 on 3 yes ((0+1)+(2+3))+(4+5), 12 on 3
    // yes; 6 on 2 no ((0+1)+2)+((3+4)+5), 12 on 2 or 4 no, 6 on 4 no (4 does not divide 6).
    BOOST_CHECK(split_tree_composes(4, 2) && split_tree_composes(6, 3) && split_tree_composes(12, 3));
    BOOST_CHECK(split_tree_composes(6, 1) && split_tree_composes(16, 8) && split_tree_composes(16, 16));
    BOOST_CHECK(!split_tree_composes(6, 2) && !split_tree_composes(12, 2) && !split_tree_composes(12, 4));
    BOOST_CHECK(!split_tree_composes(6, 4) && !split_tree_composes(0, 1) && !split_tree_composes(4, 0));
    for (std::size_t n = 1; n <= 64; ++n)
        for (std::size_t p = 1; p <= n; ++p) {
            if (n % p != 0) {
                BOOST_CHECK(!split_tree_composes(n, p));
                continue;
            }
            const bool same = composed(n, p) == shape(0, n);
            BOOST_CHECK_MESSAGE(split_tree_composes(n, p) == same, "n " << n << " parts " << p);
            // and then every part is a node of the tree over [0, n)
            for (std::size_t q = 0; same && q < p; ++q) BOOST_CHECK(split_tree_node(q * n / p, (q + 1) * n / p, n));
        }
}
