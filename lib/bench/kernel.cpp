// The list of bench kernels, and the helpers their records share (kernel.hpp).
#include "bench/kernel.hpp"

#include "core/check.hpp"
#include "core/rng.hpp"

#include <algorithm>
#include <climits>

namespace ompml::bench {

const std::vector<Kernel>& all_kernels()
{
    static const std::vector<Kernel> all = [] {
        std::vector<Kernel> v = layer_kernels();
        for (auto&& part : {vector_kernels(), train_step_kernel()}) v.insert(v.end(), part.begin(), part.end());
        return v;
    }();
    return all;
}

Dims mnk(const Problem& p) { return {p.m, p.n, p.k, p.precision}; }

std::string row_name(const Kernel& k, const Dims& d)
{
    return std::string(k.name) + (k.takes_precision && d.precision == Precision::bf16 ? "_bf16" : "");
}

Dims rows_cols(const Problem& p)
{
    require(p.m <= INT_MAX / std::max(1LL, p.n), "m * n must fit in an int");
    return {p.m, p.n, 1};
}

Dims vec(const Problem& p) { return {p.len, 1, 1}; }

std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo, float hi)
{
    const Rng rng(2024, stream);
    std::vector<float> v(n);
#pragma omp parallel for
    for (std::size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.uniform(i);
    return v;
}

std::vector<std::uint8_t> spread_bytes(std::size_t n)
{
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 2654435761u >> 24);
    return v;
}

} // namespace ompml::bench
