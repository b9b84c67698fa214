// A setting of a run described once: its flag, its name in checkpoints, reports and the ranks'
// agreement, its help, its range, and what a resumed run may do with it. Tables of settings
// (nn/settings.hpp for the training hyperparameters, app/train_options.hpp for how a run runs)
// call a visitor once per setting with its Spec and an accessor of its field:
//
//   template <class F> void for_each_train_setting(F&& f)
//   {
//       f(Spec{.flag = "--lr", .key = "lr", .group = "optimizer", .help = "base learning rate",
//              .range = kPositive},
//         OMPML_FIELD(opt.lr));
//       ...
//   }
//   for_each_train_setting([&](const Spec& s, auto field) { std::puts(value_text(field(cfg)).c_str()); });
//
// Every consumer (flags, validation, agreement, report, checkpoint /config) is such a visitor,
// so a new setting is one entry. value_text and parse_value below give every field type its
// text and its parser (SettingValue<T>; the layer widths' is in nn/settings.hpp).
#pragma once

#include "core/check.hpp"
#include "core/enum_names.hpp"
#include "core/parse_int.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace ompml {

// What a resumed run does with a setting.
enum class Store {
    fixed,      // stored in checkpoints; a resumed run keeps it, and a flag given must equal it
    may_change, // stored; a flag given on resume replaces it (--epochs extends a run)
    run_only,   // not stored: how to run, not what is trained (--max-steps, --backend ...)
};

// The allowed values of a number: [lo, hi], or (lo, hi] when lo_open.
struct Range {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    bool lo_open = false;
};
inline constexpr Range kAnyValue{};
inline constexpr Range kPositive{0.0, std::numeric_limits<double>::infinity(), true};
inline constexpr Range kNonNegative{0.0, std::numeric_limits<double>::infinity(), false};
inline constexpr Range kUnitInterval{0.0, 1.0, false};

struct Spec {
    const char* flag = nullptr; // "--lr"; nullptr: no flag (a value the program sets, e.g. beta1)
    const char* key = nullptr;  // "lr": its name in /config, in the ranks' agreement, in reports
    const char* group = "";     // the report line it is printed on ("": not printed)
    const char* help = "";
    Range range = kAnyValue; // numbers only
    Store store = Store::fixed;
    bool agree = true; // every rank must hold the same value
    int since = 1;     // the checkpoint format version that added it: older files lack it (default kept)
};

// The accessor of a field of a config (const or not): OMPML_FIELD(opt.lr).
#define OMPML_FIELD(path) [](auto& c) -> auto& { return c.path; }

// ---- a value's text and parser, per field type --------------------------------------------
//
// SettingValue<T>::text(v, exact): exact text for agreement and comparisons, short text for
// reports and messages. SettingValue<T>::parse(text, out, spec): the flag's text into the field,
// throwing Error("value ...") without the flag's name. Arithmetic types, enums (by their
// EnumNames) and strings are here; nn/settings.hpp adds the layer widths.
template <class T, class = void>
struct SettingValue;

template <class T>
std::string value_text(const T& v, bool exact = false)
{
    return SettingValue<T>::text(v, exact);
}
template <class T>
void parse_value(std::string_view text, T& out, const Spec& s)
{
    SettingValue<T>::parse(text, out, s);
}

// Integers: decimal only, in the range (and in what T can hold). Reals: a finite number in
// the range, read as a double and then rounded to T (so "1e-3" gives the float nearest the
// double 0.001, the value checkpoints have always stored). Enums: one of their names.
template <class T>
struct SettingValue<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>> {
    static std::string text(T v, bool exact)
    {
        if constexpr (std::is_same_v<T, bool>) {
            return v ? "on" : "off";
        } else if constexpr (std::is_enum_v<T>) {
            return enum_name(v);
        } else if constexpr (std::is_integral_v<T>) {
            return std::to_string(v);
        } else {
            char buf[40];
            std::snprintf(buf, sizeof buf, exact ? (sizeof(T) == 4 ? "%.9g" : "%.17g") : "%g", static_cast<double>(v));
            return buf;
        }
    }

    static void parse(std::string_view text, T& out, const Spec& s)
    {
        if constexpr (std::is_same_v<T, bool>) {
            if (text != "on" && text != "off" && text != "true" && text != "false")
                throw Error("value '" + std::string(text) + "' is not on, off, true or false");
            out = text == "on" || text == "true";
        } else if constexpr (std::is_enum_v<T>) {
            out = parse_enum<T>(text, "value");
        } else if constexpr (std::is_integral_v<T>) {
            const std::string err =
                parse_int(text, out, int_bound(s.range.lo, s.range.lo_open), int_bound(s.range.hi, false));
            if (!err.empty()) throw Error(err);
        } else {
            out = static_cast<T>(parse_real(text, s.range));
        }
    }

private:
    // The integer bound of a real range's end, clamped to what T can hold.
    static T int_bound(double v, bool open)
    {
        constexpr T tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
        if (v <= static_cast<double>(tmin)) return tmin;
        if (v >= static_cast<double>(tmax)) return tmax;
        return static_cast<T>(open ? std::floor(v) + 1 : std::ceil(v));
    }
    static double parse_real(std::string_view text, const Range& r)
    {
        const std::string t(text);
        double v = 0.0;
        std::size_t used = 0;
        try {
            v = std::stod(t, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != t.size() || !std::isfinite(v)) throw Error("value '" + t + "' is not a number");
        if (r.lo_open ? !(v > r.lo) : v < r.lo)
            throw Error("value " + t + (r.lo_open ? " must be > " : " must be >= ") + value_text(r.lo));
        if (v > r.hi) throw Error("value " + t + " must be <= " + value_text(r.hi));
        return v;
    }
};

template <>
struct SettingValue<std::string> {
    static std::string text(const std::string& v, bool) { return v; }
    static void parse(std::string_view text, std::string& out, const Spec&) { out = std::string(text); }
};

} // namespace ompml
