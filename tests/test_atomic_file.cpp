// Atomic file writes (io/atomic_file.hpp) in directories where others plant entries: a taken
// temporary name (a symbolic link to a victim file, a link to nowhere, a regular file, a
// directory) is skipped and left exactly as it was, for plain files, HDF5 files (with a user
// block) and the .prev rotation; a link placed at the destination meanwhile is replaced, never
// followed; a temporary swapped while written is not renamed into place; the stale cleanup
// removes only our own dead processes' regular files; the metrics log neither truncates nor
// appends through a link. Each case runs in a plain directory and in a group one of mode 2770
// (where the kernel's protected_symlinks would not help). Collisions are forced through
// atomic_file::set_random_part, which fixes the random part of the names drawn.
#define BOOST_TEST_MODULE atomic_file
#include "io/atomic_file.hpp"
#include "io/h5.hpp"
#include "io/metrics.hpp"

#include "temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ompml;

namespace {

using test::TempDir;

std::string bytes_of(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Runs fn, which must throw ompml::Error naming `needle` on one line; returns the message.
std::string error_of(const std::function<void()>& fn, const std::string& needle)
{
    try {
        fn();
    } catch (const Error& e) {
        const std::string msg = e.what();
        BOOST_CHECK_MESSAGE(msg.find(needle) != std::string::npos, "message '" << msg << "' lacks '" << needle << "'");
        BOOST_CHECK_MESSAGE(msg.find('\n') == std::string::npos, "not one line: " << msg);
        return msg;
    }
    BOOST_ERROR("no error thrown; expected one naming '" << needle << "'");
    return "";
}

// The directories every case runs in: a plain one, and a group directory of mode 2770 (setgid,
// group-writable, not sticky: protected_symlinks does not apply there).
std::vector<std::string> case_dirs(const TempDir& t)
{
    const std::string plain = t / "plain", group = t / "group";
    fs::create_directory(plain);
    fs::create_directory(group);
    BOOST_REQUIRE_EQUAL(::chmod(group.c_str(), 02770), 0);
    struct stat st{};
    BOOST_REQUIRE_EQUAL(::stat(group.c_str(), &st), 0);
    BOOST_REQUIRE_EQUAL(st.st_mode & 07777, 02770u);
    return {plain, group};
}

// Fixes the random part of temporary names to "x00000000000", "x00000000001", ... for the scope.
struct CountedNames {
    int next = 0;
    CountedNames()
    {
        atomic_file::set_random_part([this] {
            char buf[16];
            std::snprintf(buf, sizeof buf, "x%011d", next++);
            return std::string(buf);
        });
    }
    ~CountedNames() { atomic_file::set_random_part({}); }
    // The temporary name of `path` whose random part is number i.
    static std::string name(const std::string& path, int i)
    {
        char buf[16];
        std::snprintf(buf, sizeof buf, "x%011d", i);
        return path + ".tmp." + atomic_file::host_name() + "." + std::to_string(::getpid()) + "." + buf;
    }
};

// Entries planted at names the writer will draw: kinds in turn, a symbolic link to a victim
// file, a link to a path that does not exist, a regular file, a directory. check() says that
// each is exactly as it was (and that nothing was created where the dangling link points).
struct Planted {
    std::string dir, victim, absent;
    std::vector<std::pair<std::string, int>> entries; // name, kind
    explicit Planted(const std::string& d) : dir(d), victim(d + "/victim.txt"), absent(d + "/absent.txt")
    {
        write_text(victim, "precious data\n");
    }
    void plant(const std::string& name)
    {
        const int kind = static_cast<int>(entries.size() % 4);
        switch (kind) {
        case 0: fs::create_symlink(victim, name); break;
        case 1: fs::create_symlink(absent, name); break;
        case 2: write_text(name, "planted file " + name + "\n"); break;
        default: fs::create_directory(name); break;
        }
        entries.emplace_back(name, kind);
    }
    void check() const
    {
        BOOST_CHECK_EQUAL(bytes_of(victim), "precious data\n");
        BOOST_CHECK_MESSAGE(!fs::exists(fs::symlink_status(absent)), "created through a dangling link: " << absent);
        for (const auto& [name, kind] : entries) {
            const fs::file_status st = fs::symlink_status(name);
            switch (kind) {
            case 0:
            case 1:
                BOOST_CHECK_MESSAGE(fs::is_symlink(st) && fs::read_symlink(name) == (kind == 0 ? victim : absent),
                                    "link changed: " << name);
                break;
            case 2:
                BOOST_CHECK_MESSAGE(fs::is_regular_file(st) && bytes_of(name) == "planted file " + name + "\n",
                                    "planted file changed: " << name);
                break;
            default:
                BOOST_CHECK_MESSAGE(fs::is_directory(st) && fs::is_empty(name), "directory changed: " << name);
                break;
            }
        }
    }
    // The directory's entries other than the planted ones, the victim and `expected`.
    std::set<std::string> others(const std::set<std::string>& expected) const
    {
        std::set<std::string> known(expected.begin(), expected.end());
        known.insert(victim);
        for (const auto& e : entries) known.insert(e.first);
        std::set<std::string> out;
        for (const auto& e : fs::directory_iterator(dir))
            if (known.count(e.path().string()) == 0) out.insert(e.path().string());
        return out;
    }
};

std::string joined(const std::set<std::string>& s)
{
    std::string out;
    for (const auto& x : s) out += " " + x;
    return out;
}

// An HDF5 file through create_atomically, with a user block as checkpoints have.
void write_h5(const std::string& path, float value, bool keep_previous)
{
    h5::AtomicOptions opt;
    opt.keep_previous = keep_previous;
    opt.user_block = "test user block\n";
    h5::create_atomically(path, [&](hid_t f) { h5::write(f, "x", std::vector<float>{value}); }, opt);
}
float read_h5(const std::string& path)
{
    const h5::Handle f = h5::open_read(path);
    return h5::read_all<float>(f, "x").at(0);
}

// A pid that certainly belonged to a process that has ended: a child that exited and was reaped.
pid_t dead_pid()
{
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    BOOST_REQUIRE_GT(pid, 0);
    int status = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
    return pid;
}

} // namespace

BOOST_AUTO_TEST_CASE(temporary_names_hold_host_and_pid_and_are_unpredictable)
{
    TempDir t;
    const std::string f = t / "out.bin";
    const std::regex form(std::regex_replace(f, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") + R"(\.tmp\.)" +
                          std::regex_replace(atomic_file::host_name(), std::regex(R"([.])"), R"(\.)") + R"(\.)" +
                          std::to_string(::getpid()) + R"(\.[0-9A-Za-z]{12})");
    std::set<std::string> names;
    for (int i = 0; i < 8; ++i) {
        const atomic_file::TempFile tmp(f);
        BOOST_CHECK_MESSAGE(std::regex_match(tmp.name(), form), "name " << tmp.name());
        names.insert(tmp.name());
    } // dropped without a commit: removed
    BOOST_CHECK_EQUAL(names.size(), 8u);
    BOOST_CHECK(fs::is_empty(t.dir));
}

BOOST_AUTO_TEST_CASE(taken_names_are_skipped_and_left_as_they_were)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string f = dir + "/out.bin", h = dir + "/out.h5";
            Planted planted(dir);
            write_text(f, "old contents\n");
            write_h5(h, 1.0f, false);
            {
                // The temporaries draw names 0..7 (taken), then 8; the .prev rotation's links
                // draw 9..15 (taken), then 16: every kind of entry is met by both.
                CountedNames names;
                for (int i = 0; i < 8; ++i) planted.plant(CountedNames::name(f, i));
                for (int i = 9; i < 16; ++i) planted.plant(CountedNames::name(f + ".prev", i));
                atomic_file::write_bytes(f, "new contents\n", {true, {}});
                BOOST_CHECK_EQUAL(names.next, 17);
            }
            BOOST_CHECK_EQUAL(bytes_of(f), "new contents\n");
            BOOST_CHECK_EQUAL(bytes_of(f + ".prev"), "old contents\n");
            {
                CountedNames names; // the same for an HDF5 file with a user block
                for (int i = 0; i < 8; ++i) planted.plant(CountedNames::name(h, i));
                for (int i = 9; i < 16; ++i) planted.plant(CountedNames::name(h + ".prev", i));
                write_h5(h, 2.0f, true);
                BOOST_CHECK_EQUAL(names.next, 17);
            }
            BOOST_CHECK_EQUAL(read_h5(h), 2.0f);
            BOOST_CHECK_EQUAL(read_h5(h + ".prev"), 1.0f);
            BOOST_CHECK_EQUAL(bytes_of(h).substr(0, 16), "test user block\n");
            planted.check();
            const std::set<std::string> others = planted.others({f, f + ".prev", h, h + ".prev"});
            BOOST_CHECK_MESSAGE(others.empty(), "left over:" << joined(others));
        }
    }
}

BOOST_AUTO_TEST_CASE(all_names_taken_is_a_one_line_error_naming_the_path)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string f = dir + "/out.bin", h = dir + "/out.h5";
            Planted planted(dir);
            write_text(f, "old contents\n");
            write_h5(h, 1.0f, false);
            const std::string h_before = bytes_of(h);
            atomic_file::set_random_part([] { return std::string("takentaken00"); }); // one name, always
            planted.plant(f + ".tmp." + atomic_file::host_name() + "." + std::to_string(::getpid()) + ".takentaken00");
            planted.plant(h + ".tmp." + atomic_file::host_name() + "." + std::to_string(::getpid()) + ".takentaken00");
            error_of([&] { atomic_file::write_bytes(f, "new contents\n"); }, f + ": cannot create a temporary file");
            error_of([&] { write_h5(h, 2.0f, true); }, h + ": cannot create a temporary file");
            atomic_file::set_random_part({});
            BOOST_CHECK_EQUAL(bytes_of(f), "old contents\n");
            BOOST_CHECK(bytes_of(h) == h_before);
            planted.check();
            const std::set<std::string> others = planted.others({f, h});
            BOOST_CHECK_MESSAGE(others.empty(), "left over:" << joined(others));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_link_placed_at_the_destination_meanwhile_is_replaced_not_followed)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string f = dir + "/out.bin", h = dir + "/out.h5", victim = dir + "/victim.txt";
            write_text(victim, "precious data\n");
            // While the new file is written, out.bin becomes a link to the victim.
            atomic_file::write(f, [&](int fd) {
                atomic_file::write_all(fd, "new contents\n", f);
                fs::create_symlink(victim, f);
            });
            BOOST_CHECK(fs::is_regular_file(fs::symlink_status(f)));
            BOOST_CHECK_EQUAL(bytes_of(f), "new contents\n");
            // The same with the rotation, out.h5.prev a link to the victim too; the link at
            // out.h5 leads to no HDF5 file, so keep_if refuses to keep it (as checkpoints do).
            write_h5(h, 1.0f, false);
            h5::AtomicOptions opt;
            opt.keep_previous = true;
            opt.keep_if = [](const std::string& p) { return H5Fis_hdf5(p.c_str()) > 0; };
            h5::create_atomically(
                h,
                [&](hid_t file) {
                    h5::write(file, "x", std::vector<float>{2.0f});
                    fs::remove(h);
                    fs::create_symlink(victim, h);
                    fs::create_symlink(victim, h + ".prev");
                },
                opt);
            BOOST_CHECK(fs::is_regular_file(fs::symlink_status(h)));
            BOOST_CHECK_EQUAL(read_h5(h), 2.0f);
            BOOST_CHECK(fs::is_symlink(fs::symlink_status(h + ".prev"))); // not ours to change
            BOOST_CHECK_EQUAL(bytes_of(victim), "precious data\n");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_temporary_replaced_while_written_is_not_renamed_into_place)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string f = dir + "/out.bin", victim = dir + "/victim.txt";
            write_text(victim, "precious data\n");
            write_text(f, "old contents\n");
            std::string name;
            error_of(
                [&] {
                    atomic_file::TempFile tmp(f);
                    name = tmp.name();
                    atomic_file::write_all(tmp.fd(), "new contents\n", f);
                    fs::remove(name); // someone swaps the temporary for a link to the victim
                    fs::create_symlink(victim, name);
                    tmp.commit();
                },
                f + ": its temporary");
            BOOST_CHECK_EQUAL(bytes_of(f), "old contents\n");
            BOOST_CHECK(fs::is_regular_file(fs::symlink_status(f)));
            BOOST_CHECK_EQUAL(bytes_of(victim), "precious data\n");
            BOOST_CHECK_MESSAGE(fs::is_symlink(fs::symlink_status(name)), "the swapped-in link was removed: " << name);
        }
    }
}

BOOST_AUTO_TEST_CASE(stale_cleanup_removes_only_our_own_dead_regular_files)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string f = dir + "/ck.h5", host = atomic_file::host_name(), victim = dir + "/victim.txt";
            const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getppid());
            const std::string stem = f + ".tmp." + host + ".", rnd = ".a1B2c3D4e5F6";
            write_text(victim, "precious data\n");
            const std::vector<std::string> stale{stem + dead + rnd, f + ".prev.tmp." + host + "." + dead + rnd,
                                                 stem + dead, f + ".tmp." + dead};
            for (const auto& p : stale) write_text(p, "stale");
            // Named like a dead process's temporaries, but not ours to remove.
            const std::string link = stem + dead + ".LINK00000000", dangling = stem + dead + ".LINK00000001";
            const std::string subdir = stem + dead + ".DIR000000000", fifo = stem + dead + ".FIFO00000000";
            const std::string foreign = stem + dead + ".USER00000000"; // another user's (as root only)
            fs::create_symlink(victim, link);
            fs::create_symlink(dir + "/nothing", dangling);
            fs::create_directory(subdir);
            BOOST_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
            write_text(foreign, "another user's\n");
            const bool root = ::geteuid() == 0;
            if (root) BOOST_REQUIRE_EQUAL(::chown(foreign.c_str(), 65534, 65534), 0);
            const std::vector<std::string> live_ones{stem + live + rnd, stem + live};
            for (const auto& p : live_ones) write_text(p, "live");

            const std::vector<std::string> removed = atomic_file::remove_stale(f);
            BOOST_CHECK_EQUAL(std::set<std::string>(removed.begin(), removed.end()).size(), stale.size());
            for (const auto& p : stale) BOOST_CHECK_MESSAGE(!fs::exists(fs::symlink_status(p)), "not removed: " << p);
            BOOST_CHECK(fs::is_symlink(fs::symlink_status(link)) && fs::read_symlink(link) == victim);
            BOOST_CHECK(fs::is_symlink(fs::symlink_status(dangling)));
            BOOST_CHECK(fs::is_directory(fs::symlink_status(subdir)));
            BOOST_CHECK(fs::is_fifo(fs::symlink_status(fifo)));
            BOOST_CHECK_EQUAL(bytes_of(victim), "precious data\n");
            if (root)
                BOOST_CHECK_EQUAL(bytes_of(foreign), "another user's\n");
            else
                BOOST_TEST_MESSAGE("not root: the other user's file could not be made (owned by us, removed)");
            for (const auto& p : live_ones) BOOST_CHECK_MESSAGE(fs::exists(p), "removed: " << p);
        }
    }
}

BOOST_AUTO_TEST_CASE(metrics_log_never_writes_through_a_link)
{
    TempDir t;
    for (const std::string& dir : case_dirs(t)) {
        BOOST_TEST_CONTEXT("in " << dir)
        {
            const std::string m = dir + "/m.jsonl", victim = dir + "/victim.txt";
            write_text(victim, "precious data\n");
            MetricsRecord r;
            r.epoch = 1;
            // A new log replaces a link at its path (it used to truncate the victim).
            fs::create_symlink(victim, m);
            MetricsLog(m, false).write(r);
            BOOST_CHECK(fs::is_regular_file(fs::symlink_status(m)));
            BOOST_CHECK_EQUAL(bytes_of(m), MetricsLog::to_json(r) + "\n");
            // A resumed run appends to the file, and refuses a link there.
            const std::string first = bytes_of(m);
            r.epoch = 2;
            MetricsLog(m, true).write(r);
            BOOST_CHECK_EQUAL(bytes_of(m), first + MetricsLog::to_json(r) + "\n");
            fs::remove(m);
            fs::create_symlink(victim, m);
            error_of([&] { MetricsLog(m, true); }, "--metrics " + m + ": is a symbolic link");
            BOOST_CHECK_EQUAL(bytes_of(victim), "precious data\n");
            // A FIFO planted there fails at once instead of waiting for a reader.
            fs::remove(m);
            BOOST_REQUIRE_EQUAL(::mkfifo(m.c_str(), 0600), 0);
            error_of([&] { MetricsLog(m, true); }, "--metrics " + m);
        }
    }
}
