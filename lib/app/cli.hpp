// Command-line helpers every driver shares (CLI11): the flags of a settings table
// (core/setting.hpp) bound in one call, integer flags read by one parser (core/parse_int.hpp),
// checks for floating-point flags, usage errors as one line ("did you mean" for a misspelt
// flag), and what every program has: --version and --config FILE.
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
#include "core/provenance.hpp"
#include "core/setting.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
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

// Edit distance between two flag names (insertions, deletions, substitutions and swaps of
// neighbours), for "did you mean".
inline std::size_t flag_distance(const std::string& a, const std::string& b)
{
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// " (--lrr: did you mean --lr?)" for the first "--name" in argv that no option of app (or of its
// subcommands) has, when a known name is close: at most 2 edits, and at most one per two of its
// letters; or a known name that starts with it ("--check" for "--checkpoint-e"). "" otherwise.
inline std::string did_you_mean(const CLI::App& app, int argc, char** argv)
{
    std::vector<std::string> known;
    const std::function<void(const CLI::App&)> collect = [&](const CLI::App& a) {
        for (const CLI::Option* o : a.get_options())
            for (const std::string& n : o->get_lnames()) known.push_back("--" + n);
        for (const CLI::App* sub : a.get_subcommands([](const CLI::App*) { return true; })) collect(*sub);
    };
    collect(app);
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0 || arg.size() < 3) continue;
        arg = arg.substr(0, arg.find('='));
        if (std::find(known.begin(), known.end(), arg) != known.end()) continue;
        std::string best;
        std::size_t best_d = std::numeric_limits<std::size_t>::max();
        for (const std::string& k : known) {
            const std::size_t d = k.rfind(arg, 0) == 0 ? 1 : flag_distance(arg, k);
            if (d < best_d) best_d = d, best = k;
        }
        if (!best.empty() && best_d <= 2 && 2 * best_d <= arg.size() - 2)
            return " (" + arg + ": did you mean " + best + "?)";
        return "";
    }
    return "";
}

// What every program's command line has besides its own flags: --version (core/provenance.hpp)
// and --config FILE, CLI11's own config files (TOML or INI; "lr = 0.01", the flag's long name
// without the dashes; flags on the command line win; a name that is no flag is an error).
inline void add_common_flags(CLI::App& app, const std::string& program)
{
    app.set_version_flag("--version", version_text(program), "print the version, git commit and build flags, and exit");
    app.set_config("--config", "", "read flags from this TOML file (name = value per line; the command line wins)");
    app.allow_config_extras(CLI::config_extras_mode::error);
}

// A flag renamed, its old name kept as an alias for a release (both name one option): prints
// "<program>: note: --warmup is now --warmup-runs; the old name goes in the next release" on
// stderr when argv uses the old one (and print is true).
inline void note_renamed(int argc, char** argv, const std::string& old_name, const std::string& new_name,
                         const char* program, bool print)
{
    for (int i = 1; i < argc && print; ++i) {
        const std::string a = argv[i];
        if (a != old_name && a.rfind(old_name + "=", 0) != 0) continue;
        std::fprintf(stderr, "%s: note: %s is now %s; the old name goes in the next release\n", program,
                     old_name.c_str(), new_name.c_str());
        return;
    }
}

// "kernel backend: omp | ref": the --backend help of the programs, with this build's backends.
inline std::string backend_help(const std::vector<std::string>& available)
{
    std::string s = "kernel backend:";
    for (std::size_t i = 0; i < available.size(); ++i) s += (i ? " | " : " ") + available[i];
    return s;
}

// Parses argv into app (after add_common_flags). Returns nothing to go on, or the exit status to
// leave with: 0 after --help or --version (printed on stdout), 2 after a usage error, printed as
// ONE line on stderr: "<program>: error: <what>", with "(--lrr: did you mean --lr?)" after an unknown
// flag close to a known one. Under MPI every rank parses the same command line and so leaves
// alike; pass print = false on all but one rank.
inline std::optional<int> parse(CLI::App& app, int argc, char** argv, const char* program, bool print = true)
{
    add_common_flags(app, program);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return print ? app.exit(e) : 0; // --help, --version
        if (print) {
            std::fflush(stdout);
            std::string what = e.what();
            std::replace(what.begin(), what.end(), '\n', ' '); // one line, whatever CLI11 says
            const std::string extra = "INI was not able to parse ";
            if (dynamic_cast<const CLI::ConfigError*>(&e) != nullptr && what.rfind(extra, 0) == 0)
                what = "--config " + app.get_config_ptr()->as<std::string>() + ": '" + what.substr(extra.size()) +
                    "' is not a flag of " + program;
            std::fprintf(stderr, "%s: error: %s%s\n", program, what.c_str(), did_you_mean(app, argc, argv).c_str());
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
