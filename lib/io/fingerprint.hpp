// A cheap fingerprint of the data a rank opened, so the ranks of a run can check that they all
// read the same dataset (a stale copy on one node's local disk is a common cluster mistake):
// the splits' shapes and dtypes, and a hash of their contents.
//
// The content hash is FNV-1a over 64-bit words (the bytes' order, little-endian words; a tail
// shorter than a word byte by byte), finalised as MurmurHash3 does: a few milliseconds for Fashion-MNIST's 55 MB, and any
// changed byte changes it. It is not a cryptographic hash: it catches mistakes, not forgeries.
// What is hashed (io/loader.hpp): every label, and every image in memory mode (the whole split
// is read anyway); in streaming mode the first and last chunks of images only (reading all of
// them at start would cost what streaming avoids).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ompml {

class ContentHash {
public:
    void add(const void* data, std::size_t bytes)
    {
        const auto* p = static_cast<const unsigned char*>(data);
        std::size_t i = 0;
        for (; i + 8 <= bytes; i += 8) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            h_ = (h_ ^ w) * kPrime;
        }
        for (; i < bytes; ++i) h_ = (h_ ^ p[i]) * kPrime;
    }
    void add(std::uint64_t v) { add(&v, sizeof v); }
    // With MurmurHash3's finaliser: FNV's multiply carries a change only towards the high bits,
    // so two files that differ in one late byte would otherwise print almost the same digits.
    std::uint64_t value() const
    {
        std::uint64_t k = h_;
        k = (k ^ (k >> 33)) * 0xff51afd7ed558ccdull;
        k = (k ^ (k >> 33)) * 0xc4ceb9fe1a85ec53ull;
        return k ^ (k >> 33);
    }

private:
    static constexpr std::uint64_t kPrime = 0x100000001b3ull;
    std::uint64_t h_ = 0xcbf29ce484222325ull;
};

// 16 hex digits.
inline std::string hex64(std::uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 15];
    return s;
}

} // namespace ompml
