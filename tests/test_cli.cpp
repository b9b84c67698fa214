// The drivers' shared flag parsing (core/parse_int.hpp, app/cli.hpp) and the OpenBLAS core
// table (lib/bench/openblas_core.hpp), without running a driver. Expected values are written out
// from the limits of the types (2^64 - 1 = 18446744073709551615, 2^31 - 1 = 2147483647), not
// computed by the code under test. tests/check_int_flags.sh runs the drivers themselves.
#define BOOST_TEST_MODULE cli
#include "app/cli.hpp"
#include "bench/openblas_core.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

using namespace ompml;

namespace {

// Parses `args` (after a program name) into a fresh App holding one integer flag --x; returns
// the error text ("" when accepted) and the value read.
template <class T>
std::pair<std::string, T> parse_x(const std::vector<std::string>& args, T lo, T hi)
{
    CLI::App app;
    T x{};
    cli::add_int(app, "--x", x, "test flag", lo, hi);
    std::vector<std::string> argv_s{"prog"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        return {e.what(), x};
    }
    return {"", x};
}

constexpr std::uint64_t kU64Max = 18446744073709551615ull;

} // namespace

namespace ompml {
std::ostream& operator<<(std::ostream& os, Isa i) { return os << isa_name(i); } // for BOOST_TEST's messages
} // namespace ompml

BOOST_AUTO_TEST_CASE(parse_int_accepts_decimal_integers_in_range)
{
    std::uint64_t u = 0;
    BOOST_TEST(parse_int("0", u).empty());
    BOOST_TEST(u == 0u);
    BOOST_TEST(parse_int("18446744073709551615", u).empty());
    BOOST_TEST(u == kU64Max);
    BOOST_TEST(parse_int("+7", u).empty());
    BOOST_TEST(u == 7u);
    BOOST_TEST(parse_int("010", u).empty()); // decimal, not octal
    BOOST_TEST(u == 10u);
    int i = 0;
    BOOST_TEST(parse_int("-2147483648", i).empty());
    BOOST_TEST(i == -2147483647 - 1);
    BOOST_TEST(parse_int("5", i, 1, 5).empty());
    BOOST_TEST(i == 5);
}

BOOST_AUTO_TEST_CASE(parse_int_rejects_with_the_value_named)
{
    std::uint64_t u = 42;
    const std::string u_range = " is not an integer in [0, 18446744073709551615]";
    BOOST_TEST(parse_int("-1", u) == "value '-1'" + u_range);
    BOOST_TEST(parse_int("18446744073709551616", u) == "value '18446744073709551616'" + u_range);
    BOOST_TEST(parse_int("99999999999999999999999", u) == "value '99999999999999999999999'" + u_range);
    for (const char* junk : {"", " 5", "5 ", "5x", "0x10", "1e3", "1.0", "+", "-", "++5", "+-5", "nan"})
        BOOST_TEST(parse_int(junk, u) == "value '" + std::string(junk) + "'" + u_range, "text '" << junk << "'");
    BOOST_TEST(u == 42u); // unchanged by every failure

    int i = 42;
    BOOST_TEST(parse_int("2147483648", i, 1) == "value '2147483648' is not an integer in [1, 2147483647]");
    BOOST_TEST(parse_int("0", i, 1) == "value 0 must be > 0");
    BOOST_TEST(parse_int("-3", i, 0) == "value -3 must be >= 0");
    BOOST_TEST(parse_int("1", i, 2) == "value 1 must be >= 2");
    BOOST_TEST(parse_int("101", i, 1, 100) == "value 101 must be <= 100");
    BOOST_TEST(i == 42);
}

BOOST_AUTO_TEST_CASE(add_int_through_cli11)
{
    // CLI11 2.1 alone: "-1" -> 2^64-1, "18446744073709551616" -> 2^64-1, "010" -> 8. Through add_int:
    using U = std::uint64_t;
    BOOST_TEST(parse_x<U>({"--x", "-1"}, 0, kU64Max).first ==
               "--x: value '-1' is not an integer in [0, 18446744073709551615]");
    BOOST_TEST(parse_x<U>({"--x=18446744073709551616"}, 0, kU64Max).first ==
               "--x: value '18446744073709551616' is not an integer in [0, 18446744073709551615]");
    BOOST_TEST((parse_x<U>({"--x", "18446744073709551615"}, 0, kU64Max) == std::pair<std::string, U>{"", kU64Max}));
    BOOST_TEST((parse_x<U>({"--x", "010"}, 0, kU64Max) == std::pair<std::string, U>{"", 10}));
    BOOST_TEST((parse_x<int>({"--x", "+3"}, 1, 2147483647) == std::pair<std::string, int>{"", 3}));
    BOOST_TEST(parse_x<int>({"--x", "0"}, 1, 2147483647).first == "--x: value 0 must be > 0");
    BOOST_TEST(parse_x<long long>({"--x", "7x"}, 0, 1000).first == "--x: value '7x' is not an integer in [0, 1000]");
}

BOOST_AUTO_TEST_CASE(real_checks)
{
    CLI::App app;
    double v = 0.0;
    app.add_option("--lr", v)->check(cli::kPositive);
    auto run = [&](const char* value) -> std::string {
        std::vector<std::string> s{"prog", "--lr", value};
        std::vector<char*> argv{s[0].data(), s[1].data(), s[2].data()};
        try {
            app.parse(3, argv.data());
        } catch (const CLI::ParseError& e) {
            return e.what();
        }
        return "";
    };
    BOOST_TEST(run("0.5") == "");
    BOOST_TEST(v == 0.5);
    BOOST_TEST(run("0") == "--lr: value 0 must be > 0");
    BOOST_TEST(run("nan") == "--lr: value 'nan' is not a number");
    BOOST_TEST(run("1e-3x") == "--lr: value '1e-3x' is not a number");
}

BOOST_AUTO_TEST_CASE(parse_returns_the_exit_status)
{
    auto status = [](std::vector<std::string> args) {
        CLI::App app;
        int x = 0;
        cli::add_int(app, "--x", x, "test flag", 1);
        args.insert(args.begin(), "prog");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        return cli::parse(app, static_cast<int>(argv.size()), argv.data(), "prog", /*print=*/false);
    };
    BOOST_TEST(!status({"--x", "3"}).has_value()); // go on
    BOOST_TEST(status({"--x", "0"}).value() == 2); // usage error
    BOOST_TEST(status({"--y"}).value() == 2);
    BOOST_TEST(status({"--help"}).value() == 0);
}

BOOST_AUTO_TEST_CASE(openblas_core_table)
{
    BOOST_TEST(openblas_core_isa("Haswell") == Isa::avx2);
    BOOST_TEST(openblas_core_isa("haswell") == Isa::avx2); // OPENBLAS_CORETYPE ignores case
    BOOST_TEST(openblas_core_isa("Zen") == Isa::avx2);
    BOOST_TEST(openblas_core_isa("Cooperlake") == Isa::avx512);
    BOOST_TEST(openblas_core_isa("SkylakeX") == Isa::avx512);
    BOOST_TEST(openblas_core_isa("Sandybridge") == Isa::avx);
    BOOST_TEST(openblas_core_isa("Nehalem") == Isa::sse);
    BOOST_TEST(openblas_core_isa("Unknown") == Isa::unknown);
    BOOST_TEST(openblas_core_isa("") == Isa::unknown);
}

BOOST_AUTO_TEST_CASE(openblas_core_warning_only_when_forced_below_the_cpu)
{
    // The case: OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU.
    const std::string w = openblas_core_warning("Haswell", "Haswell", Isa::avx512);
    BOOST_TEST(w.find("OPENBLAS_CORETYPE=Haswell") == 0u, w);
    BOOST_TEST(w.find("Haswell kernels (AVX2) on a CPU with AVX-512") != std::string::npos, w);
    BOOST_TEST(w.find('\n') == std::string::npos);
    BOOST_TEST(!openblas_core_warning("Zen", "zen", Isa::avx512).empty());
    BOOST_TEST(!openblas_core_warning("Sandybridge", "Sandybridge", Isa::avx2).empty());
    // No warning: not forced, forced to the CPU's level or above, or a level nobody knows.
    BOOST_TEST(openblas_core_warning("Haswell", nullptr, Isa::avx512).empty());
    BOOST_TEST(openblas_core_warning("Haswell", "", Isa::avx512).empty());
    BOOST_TEST(openblas_core_warning("Cooperlake", "Cooperlake", Isa::avx512).empty());
    BOOST_TEST(openblas_core_warning("Haswell", "Haswell", Isa::avx2).empty());
    BOOST_TEST(openblas_core_warning("Cooperlake", "bogus", Isa::avx512).empty()); // OpenBLAS chose itself
    BOOST_TEST(openblas_core_warning("NewCore", "NewCore", Isa::avx512).empty());
    BOOST_TEST(openblas_core_warning("Haswell", "Haswell", Isa::unknown).empty());
}

BOOST_AUTO_TEST_CASE(cpu_isa_is_known_on_x86)
{
#if defined(__x86_64__)
    BOOST_TEST(cpu_isa() >= Isa::sse); // every x86-64 CPU has SSE2
#endif
    BOOST_TEST_MESSAGE("this CPU: " << isa_name(cpu_isa()));
}
