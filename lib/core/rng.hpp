// Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11). A value is a pure function of
// (key, counter), so any element of any stream can be drawn on the host or on a device, in
// any order, and give the same bits: parameter init, shuffles and synthetic data depend only
// on the seed and on what is being drawn, never on thread or rank count.
#pragma once

#include "core/hd.hpp"

#include <cmath>
#include <cstdint>

namespace ompml {

struct Philox4 {
    std::uint32_t v[4];
};

#pragma omp declare target
OMPML_HD inline void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo)
{
    const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
}

// 4 random 32-bit words for counter (c0..c3) under key (k0, k1).
OMPML_HD inline Philox4 philox4x32(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                                   std::uint32_t k0, std::uint32_t k1)
{
    for (int round = 0; round < 10; ++round) {
        std::uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
        philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
        const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return Philox4{{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits.
OMPML_HD inline float philox_to_unit(std::uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
#pragma omp end declare target

// A named stream of random numbers: stream `id` under `seed`. Element i of the stream is
// philox(counter = (i, id), key = seed); draw(i) is cheap and stateless.
class Rng {
public:
    OMPML_HD Rng(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}

    OMPML_HD Philox4 bits(std::uint64_t i) const
    {
        return philox4x32(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i >> 32),
                          static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32),
                          static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32));
    }
    // Uniform float in [0, 1) for element i.
    OMPML_HD float uniform(std::uint64_t i) const { return philox_to_unit(bits(i).v[0]); }
    // Standard normal for element i (Box-Muller on two words of the same counter).
    OMPML_HD float normal(std::uint64_t i) const
    {
        const Philox4 r = bits(i);
        const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777217.0f); // (0, 1]
        const float u2 = philox_to_unit(r.v[1]);
        return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530717958647692f * u2);
    }
    // Uniform integer in [0, n) for element i (n < 2^32; 64-bit multiply-shift, tiny bias).
    OMPML_HD std::uint32_t below(std::uint64_t i, std::uint32_t n) const
    {
        return static_cast<std::uint32_t>((static_cast<std::uint64_t>(bits(i).v[2]) * n) >> 32);
    }

private:
    std::uint64_t seed_;
    std::uint64_t stream_;
};

} // namespace ompml
