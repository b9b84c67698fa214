// Command-line helpers every driver shares (CLI11): the flags of a settings table
// (core/setting.hpp) bound in one call, integer flags read by one parser (core/parse_int.hpp),
// checks for floating-point flags, and usage errors as one line.
//
//   cli::SettingFlags flags;
//   flags.add(app, cfg, [](auto&& f) { for_each_train_setting(f); });   // every setting with a flag
//   if (const auto rc = cli::parse(app, argc, argv, "ompml-train")) return *rc;
//   flags.apply();                                                       // values into cfg
//   flags.given("lr");                                                   // was --lr on the command line?
//
//   cli::add_int(app, "--epochs", a.epochs, "epochs to train", 1);      // [1, INT_MAX]
//   cli::add_int(app, "--seed", a.seed, "seed of init and shuffle");     // [0, 2^64-1]; "010" is 10
//   app.add_option("--lr", a.lr, "learning rate")->check(cli::kPositive);
//   if (const auto rc = cli::parse(app, argc, argv, "ompml-train")) return *rc;
//
// Errors read "<program>: error: --seed: value '-1' is not an integer in [0, 18446744073709551615]".
#pragma once

#include "core/parse_int.hpp"
#include "core/setting.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <concepts>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>

namespace ompml::cli {

// What the help text says about an integer flag's range.
template <std::integral T>
std::string int_range_desc(T lo, T hi)
{
    if (hi != std::numeric_limits<T>::max()) return "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (lo == 1) return "> 0";
    if (lo == 0 && std::is_signed_v<T>) return ">= 0";
    return {}; // the type's whole range: nothing to say
}

// The check of an integer flag of type T in [lo, hi] (messages: core/parse_int.hpp). It runs on
// the text before CLI11 converts it and rewrites an accepted value as plain decimal, because
// CLI11 2.1 converts with strtoull/strtoll in base 0: "-1" wraps to 2^64-1, an overflow
// saturates without an error, and "010" is octal 8. Give it to Option::transform, not check:
// CLI11 hands check() a copy, so the rewrite would be lost.
template <std::integral T>
CLI::Validator int_in(T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max())
{
    return CLI::Validator(
        [lo, hi](std::string& s) -> std::string {
            T v{};
            std::string err = parse_int(s, v, lo, hi);
            if (err.empty()) s = std::to_string(v);
            return err;
        },
        int_range_desc(lo, hi));
}

// Adds an integer flag that accepts exactly the decimal integers in [lo, hi]: every integer
// flag of every driver goes through here, so CLI11's own conversion only ever sees plain
// decimal text in range.
template <std::integral T>
CLI::Option* add_int(CLI::App& app, const std::string& name, T& value, const std::string& desc,
                     std::type_identity_t<T> lo = std::numeric_limits<T>::min(),
                     std::type_identity_t<T> hi = std::numeric_limits<T>::max())
{
    return app.add_option(name, value, desc)->transform(int_in<T>(lo, hi));
}
template <std::integral T>
CLI::Option* add_int(CLI::App* app, const std::string& name, T& value, const std::string& desc,
                     std::type_identity_t<T> lo = std::numeric_limits<T>::min(),
                     std::type_identity_t<T> hi = std::numeric_limits<T>::max())
{
    return add_int(*app, name, value, desc, lo, hi);
}

// Checks of floating-point flags, by the settings' own parser (core/setting.hpp): the whole
// text must be a finite number ("value 'abc' is not a number"; nan and inf are not), in the
// range ("value 0 must be > 0", "value -1 must be >= 0").
inline CLI::Validator real(Range range, const std::string& desc)
{
    return CLI::Validator(
        [range](std::string& s) -> std::string {
            double v = 0.0;
            try {
                parse_value(s, v, Spec{.range = range});
            } catch (const std::exception& e) {
                return e.what();
            }
            return {};
        },
        desc);
}
inline const CLI::Validator kFinite = real(kAnyValue, "");
inline const CLI::Validator kPositive = real(ompml::kPositive, "> 0");
inline const CLI::Validator kNonNegative = real(ompml::kNonNegative, ">= 0");

// Parses argv into app. Returns nothing to go on, or the exit status to leave with: 0 after
// --help (printed on stdout), 2 after a usage error, printed as ONE line on stderr:
// "<program>: error: <what>". Under MPI every rank parses the same command line and so leaves
// alike; pass print = false on all but one rank.
inline std::optional<int> parse(CLI::App& app, int argc, char** argv, const char* program, bool print = true)
{
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return print ? app.exit(e) : 0; // --help
        if (print) {
            std::fflush(stdout);
            std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        }
        return 2;
    }
    return std::nullopt;
}

// The flags of settings tables: each setting with a flag becomes an option whose text is
// checked by the setting's own parser (so CLI11 reports "--lr: value 0 must be > 0" as any usage
// error) and, after parsing, written into the config by that parser (apply). Values never pass
// through CLI11's own conversions.
class SettingFlags {
public:
    // cfg must outlive apply(); table is a callable that visits the settings:
    // [](auto&& f) { for_each_train_setting(f); }.
    template <class Config, class Table>
    void add(CLI::App& app, Config& cfg, Table&& table)
    {
        table([&](const Spec& s, auto field) {
            using T = std::remove_cvref_t<decltype(field(cfg))>;
            if (s.flag == nullptr) return;
            T& target = field(cfg);
            const std::string key = s.key;
            if constexpr (std::is_same_v<T, bool>) {
                CLI::Option* o = app.add_flag(s.flag, target, s.help);
                apply_.push_back([this, o, key] {
                    if (o->count() > 0) given_.insert(key);
                });
            } else {
                std::string& text = text_[key];
                CLI::Option* o = app.add_option(s.flag, text, s.help)->default_str(value_text(target));
                o->type_name(type_name<T>());
                o->check(CLI::Validator(
                    [s](std::string& v) -> std::string {
                        T parsed{};
                        try {
                            parse_value(v, parsed, s);
                        } catch (const std::exception& e) {
                            return e.what();
                        }
                        return {};
                    },
                    ""));
                apply_.push_back([this, o, key, s, &target, &text] {
                    if (o->count() == 0) return;
                    parse_value(text, target, s);
                    given_.insert(key);
                });
            }
        });
    }

    // The value's kind in --help (INT, UINT, FLOAT, TEXT), as CLI11 names its own.
    template <class T>
    static const char* type_name()
    {
        if constexpr (std::is_integral_v<T>) return std::is_signed_v<T> ? "INT" : "UINT";
        if constexpr (std::is_floating_point_v<T>) return "FLOAT";
        return "TEXT";
    }

    // After a successful parse: the values given into their configs.
    void apply()
    {
        for (const auto& a : apply_) a();
    }
    bool given(const std::string& key) const { return given_.count(key) > 0; }
    const std::set<std::string>& given() const { return given_; }

private:
    std::map<std::string, std::string> text_; // the flags' text, by key (stable addresses)
    std::vector<std::function<void()>> apply_;
    std::set<std::string> given_;
};

} // namespace ompml::cli
