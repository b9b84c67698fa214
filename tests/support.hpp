// Test helpers: random host data, upload/download through a backend, and closeness checks of
// the form |x - ref| <= atol + rtol * |ref| that report the worst element.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/rng.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ompml::test {

inline std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo = -1.0f, float hi = 1.0f)
{
    const Rng rng(1234, stream);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.uniform(i);
    return v;
}

template <class T>
DeviceBuffer<T> upload(const Backend& be, const std::vector<T>& host)
{
    return DeviceBuffer<T>(be.memory(), host);
}

// Checks every element; on failure reports how many differ and the worst one.
inline void check_close(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol,
                        const std::string& what)
{
    BOOST_REQUIRE_EQUAL(got.size(), ref.size());
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
        const double tol = atol + rtol * std::fabs(ref[i]);
        const double excess = std::isnan(err) ? 1e30 : err - tol;
        if (excess > 0) ++bad;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    BOOST_CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements differ; worst at "
                                       << worst << ": got " << got[worst] << ", ref " << ref[worst]);
}

} // namespace ompml::test
