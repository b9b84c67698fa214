// One name table per enum: the text each value has in flags, checkpoints, agreement and
// reports, and the one pair of functions that turns names into values and back.
//
//   template <> struct EnumNames<OptKind> {
//       static constexpr const char* what = "optimizer";
//       static constexpr std::pair<OptKind, const char*> names[] = {{OptKind::sgd, "sgd"}, ...};
//   };
//   parse_enum<OptKind>("adam")  -> OptKind::adam; "x" throws "optimizer 'x' is not one of sgd, adam, adamw"
//   enum_name(OptKind::adam)     -> "adam"
//   enum_choices<OptKind>(" | ") -> "sgd | adam | adamw" (help texts)
#pragma once

#include "core/check.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace ompml {

// Specialised next to each enum, as above.
template <class E>
struct EnumNames;

template <class E>
std::string enum_choices(std::string_view sep = ", ")
{
    std::string s;
    for (const auto& [value, name] : EnumNames<E>::names) s += (s.empty() ? "" : std::string(sep)) + name;
    return s;
}

// what names the text in the message (a flag's parser passes "value").
template <class E>
E parse_enum(std::string_view text, const char* what = EnumNames<E>::what)
{
    for (const auto& [value, name] : EnumNames<E>::names)
        if (text == name) return value;
    throw Error(std::string(what) + " '" + std::string(text) + "' is not one of " + enum_choices<E>());
}

template <class E>
const char* enum_name(E v)
{
    for (const auto& [value, name] : EnumNames<E>::names)
        if (value == v) return name;
    return "?";
}

} // namespace ompml
