// Whole-string decimal integers with a range: the one parser behind every integer flag
// (app/cli.hpp) and any integer read from text (environment variables).
//
//   std::uint64_t seed;
//   const std::string err = parse_int("-1", seed);   // "value '-1' is not an integer in [0, 18446744073709551615]"
//
// Why not strtoull/stoll: strtoull turns "-1" into 2^64-1 and clamps "18446744073709551616"
// to 2^64-1 (CLI11 2.1 reads every integer flag that way, without looking at errno), both
// accept leading blanks, and CLI11 passes base 0, so "010" would be octal 8. Here the text must
// be an optional sign and decimal digits, nothing else, and the value must lie in [lo, hi].
#pragma once

#include <charconv>
#include <concepts>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace ompml {

// "value '<s>' is not an integer in [lo, hi]": the text for anything that is no integer of T.
template <std::integral T>
std::string int_range_text(std::string_view s, T lo, T hi)
{
    return "value '" + std::string(s) + "' is not an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
        "]";
}

// Parses s into out when s is "[+-]?[0-9]+" and its value lies in [lo, hi]; returns "" then.
// Otherwise out is unchanged and the result says why, naming the value:
//   not an integer, or outside what T can hold:  value '<s>' is not an integer in [lo, hi]
//   an integer of T below lo:                    value <s> must be > 0 (lo == 1) or >= lo, the
//                                                wording of the floating-point flags' checks
//   an integer of T above hi:                    value <s> must be <= hi
template <std::integral T>
std::string parse_int(std::string_view s, T& out, T lo = std::numeric_limits<T>::min(),
                      T hi = std::numeric_limits<T>::max())
{
    std::string_view digits = s;
    // from_chars takes a '-' (signed types only) but no '+': a leading '+' is allowed here,
    // as strtoll allowed it, when a digit follows.
    if (digits.size() > 1 && digits[0] == '+' && digits[1] >= '0' && digits[1] <= '9') digits.remove_prefix(1);
    T v{};
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return int_range_text(s, lo, hi);
    if (v < lo) {
        if (lo == 1) return "value " + std::string(s) + " must be > 0";
        return "value " + std::string(s) + " must be >= " + std::to_string(lo);
    }
    if (v > hi) return "value " + std::string(s) + " must be <= " + std::to_string(hi);
    out = v;
    return {};
}

} // namespace ompml
