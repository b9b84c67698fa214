// Checkpoint files as targets and as inputs (issue 11, items 5-7): --checkpoint F never destroys
// a user's file (a dataset, a text file, a directory, a symbolic link to one, the .prev slot);
// rotation to F.prev only ever moves a valid checkpoint; stale temporaries of dead processes go,
// live ones stay; files of older builds (no user block) are still read; read_checkpoint refuses
// non-finite tensors and impossible counters, write_checkpoint non-finite tensors. Checkpoints
// are built by hand (no training), so each case says exactly which state it writes.
#define BOOST_TEST_MODULE checkpoint
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "io/synth.hpp"

#include "temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ompml;

namespace {

using test::TempDir;

// A small adam checkpoint at `step`: layers 4,3,2 (23 parameters), values a function of step.
Checkpoint make_checkpoint(std::int64_t step)
{
    Checkpoint ck;
    ck.config.model.layers = {4, 3, 2};
    ck.config.opt.kind = OptKind::adam;
    ck.config.batch = 8;
    ck.data = DataDesc{"data.h5", 4, 2, 40, 10};
    ck.state.step = step;
    ck.state.epoch = step / 5;
    ck.state.step_in_epoch = step % 5;
    ck.opt_steps = step;
    for (int i = 0; i < 23; ++i) {
        ck.params.push_back(0.01f * static_cast<float>(i + step));
        ck.m.push_back(-0.001f * static_cast<float>(i));
        ck.v.push_back(1e-4f * static_cast<float>(i + 1));
    }
    return ck;
}

std::string bytes_of(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Runs fn, which must throw ompml::Error containing each of `needles`; returns the message.
std::string error_of(const std::function<void()>& fn, const std::vector<std::string>& needles)
{
    try {
        fn();
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& n : needles)
            BOOST_CHECK_MESSAGE(msg.find(n) != std::string::npos, "message '" << msg << "' lacks '" << n << "'");
        BOOST_CHECK_MESSAGE(msg.find('\n') == std::string::npos, "not one line: " << msg);
        return msg;
    }
    BOOST_ERROR("no error thrown; expected one containing '" << needles.front() << "'");
    return "";
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

// Overwrites element `index` of a dataset of float32 in place (a damaged or diverged file).
void poke_float(const std::string& path, const std::string& dataset, hsize_t index, float v)
{
    h5::Handle f = h5::open_rw(path);
    h5::Handle ds = h5::open_dataset(f, dataset);
    h5::Handle space(H5Dget_space(ds));
    const int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {1, 1};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    const hsize_t start[2] = {rank == 2 ? index / dims[1] : index, rank == 2 ? index % dims[1] : 0};
    const hsize_t count[2] = {1, 1};
    H5_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr));
    h5::Handle mem(H5Screate_simple(rank, count, nullptr));
    H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &v));
}

} // namespace

// ---- Targets: nothing but a checkpoint is ever replaced ---------------------------------------

BOOST_AUTO_TEST_CASE(dataset_file_is_refused_and_unchanged)
{
    TempDir t;
    SynthOptions o;
    o.train = 50, o.test = 10, o.features = 4, o.classes = 2;
    const std::string data = t / "data.h5";
    write_synth(o, data);
    const std::string before = bytes_of(data);
    const std::string m = error_of([&] { check_checkpoint_target(data); }, {data, "is a dataset file", "refusing"});
    BOOST_TEST_MESSAGE(m);
    // write_checkpoint itself refuses too (the last line of defence), with rotation or without.
    error_of([&] { write_checkpoint(data, make_checkpoint(3), true); }, {data, "is a dataset file"});
    error_of([&] { write_checkpoint(data, make_checkpoint(3), false); }, {data, "is a dataset file"});
    BOOST_CHECK(bytes_of(data) == before);
    BOOST_CHECK(!fs::exists(data + ".prev"));
}

BOOST_AUTO_TEST_CASE(text_and_foreign_hdf5_files_are_refused_byte_for_byte_unchanged)
{
    TempDir t;
    const std::string txt = t / "notes.txt";
    write_text(txt, "my notes\nline two\n");
    error_of([&] { write_checkpoint(txt, make_checkpoint(1), true); }, {txt, "not even an HDF5 file"});
    BOOST_CHECK(bytes_of(txt) == "my notes\nline two\n");
    BOOST_CHECK(!fs::exists(txt + ".prev"));

    const std::string other = t / "other.h5"; // HDF5, but not ours and not a dataset
    {
        h5::Handle f = h5::create(other);
        h5::write(f, "x", std::vector<float>{1, 2, 3});
    }
    const std::string before = bytes_of(other);
    error_of([&] { write_checkpoint(other, make_checkpoint(1), true); },
             {other, "without the ompml-checkpoint format tag"});
    BOOST_CHECK(bytes_of(other) == before);
    for (const auto& e : fs::directory_iterator(t.dir)) // no temporary left either
        BOOST_CHECK_MESSAGE(e.path().string().find(".tmp.") == std::string::npos, "left over: " << e.path());
}

BOOST_AUTO_TEST_CASE(directory_is_refused_and_not_renamed)
{
    TempDir t;
    const std::string dir = t / "ck.h5";
    fs::create_directories(dir);
    write_text(dir + "/inside.txt", "keep me");
    error_of([&] { check_checkpoint_target(dir); }, {dir, "is a directory"});
    error_of([&] { write_checkpoint(dir, make_checkpoint(2), true); }, {dir, "is a directory"});
    BOOST_CHECK(fs::is_directory(dir));
    BOOST_CHECK(bytes_of(dir + "/inside.txt") == "keep me");
    BOOST_CHECK(!fs::exists(dir + ".prev"));
}

BOOST_AUTO_TEST_CASE(symbolic_links_are_judged_by_their_target)
{
    TempDir t;
    const std::string txt = t / "notes.txt", link = t / "link.h5";
    write_text(txt, "text");
    fs::create_symlink(txt, link);
    error_of([&] { write_checkpoint(link, make_checkpoint(1), true); },
             {link, "not even an HDF5 file", "symbolic link"});
    BOOST_CHECK(bytes_of(txt) == "text");
    BOOST_CHECK(fs::is_symlink(link));

    const std::string dangling = t / "dangling.h5";
    fs::create_symlink(t / "nowhere.h5", dangling);
    error_of([&] { check_checkpoint_target(dangling); }, {dangling, "which does not exist"});

    // A link to a checkpoint is a checkpoint: accepted, the linked file itself is never written.
    const std::string real = t / "real.h5", to_real = t / "to_real.h5";
    write_checkpoint(real, make_checkpoint(4));
    const std::string real_bytes = bytes_of(real);
    fs::create_symlink(real, to_real);
    BOOST_CHECK_NO_THROW(check_checkpoint_target(to_real));
    write_checkpoint(to_real, make_checkpoint(5), true);
    BOOST_CHECK_EQUAL(read_checkpoint(to_real).state.step, 5);
    BOOST_CHECK(bytes_of(real) == real_bytes);
}

BOOST_AUTO_TEST_CASE(missing_or_unwritable_directory_is_an_early_error)
{
    TempDir t;
    error_of([&] { check_checkpoint_target(t / "no/such/dir/ck.h5"); }, {"directory", "no/such/dir", "does not exist"});
    write_text(t / "plain", "x");
    error_of([&] { check_checkpoint_target(t / "plain/ck.h5"); }, {"plain", "is not a directory"});
    error_of([&] { check_checkpoint_target(t / "sub/"); }, {"names a directory"});
    // Missing and empty files are fine (an empty file holds nothing to lose, e.g. from mktemp).
    BOOST_CHECK_NO_THROW(check_checkpoint_target(t / "new.h5"));
    write_text(t / "empty.h5", "");
    BOOST_CHECK_NO_THROW(check_checkpoint_target(t / "empty.h5"));
    write_checkpoint(t / "empty.h5", make_checkpoint(1), true);
    BOOST_CHECK(!fs::exists(t / "empty.h5.prev")); // nothing worth keeping
    const std::string ro = t / "ro";
    fs::create_directories(ro);
    fs::permissions(ro,
                    fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec);
    if (::geteuid() != 0) {
        error_of([&] { check_checkpoint_target(ro + "/ck.h5"); }, {"cannot create files in directory", ro});
        return;
    }
    // root may write anywhere: check as user nobody, in a child process (exit 0: the expected error).
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
        try {
            check_checkpoint_target(ro + "/ck.h5");
        } catch (const Error& e) {
            ::_exit(std::string(e.what()).find("cannot create files in directory " + ro) != std::string::npos ? 0 : 3);
        }
        ::_exit(4);
    }
    int status = -1;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
    BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                        "as user nobody: exit " << WEXITSTATUS(status)
                                                << " (2: setuid failed, 3: other message, "
                                                   "4: no error)");
}

// ---- Rotation: F.prev only ever receives a valid checkpoint ------------------------------------

BOOST_AUTO_TEST_CASE(prev_is_only_ever_a_valid_checkpoint)
{
    TempDir t;
    const std::string f = t / "ck.h5", prev = f + ".prev";
    write_checkpoint(f, make_checkpoint(10), true);
    BOOST_CHECK(!fs::exists(prev));
    write_checkpoint(f, make_checkpoint(20), true);
    BOOST_CHECK_EQUAL(read_checkpoint(prev).state.step, 10);
    BOOST_CHECK_EQUAL(read_checkpoint(f).state.step, 20);

    // A .prev slot holding someone else's file is refused, and nothing changes.
    const std::string good_prev = bytes_of(prev), good_f = bytes_of(f);
    write_text(prev, "not a checkpoint");
    error_of([&] { write_checkpoint(f, make_checkpoint(30), true); }, {prev, "not even an HDF5 file"});
    BOOST_CHECK(bytes_of(prev) == "not a checkpoint");
    BOOST_CHECK(bytes_of(f) == good_f);
    // Without rotation the .prev slot is not touched, so it does not matter.
    BOOST_CHECK_NO_THROW(check_checkpoint_target(f, false));
    std::ofstream(prev, std::ios::binary | std::ios::trunc) << good_prev;

    // A valid checkpoint with a NaN weight (from a build that wrote it) is not worth keeping.
    poke_float(f, "params/layer0/weight", 3, std::nanf(""));
    write_checkpoint(f, make_checkpoint(40), true);
    BOOST_CHECK_EQUAL(read_checkpoint(prev).state.step, 10);
    BOOST_CHECK_EQUAL(read_checkpoint(f).state.step, 40);
}

BOOST_AUTO_TEST_CASE(truncated_checkpoint_is_replaced_but_not_rotated)
{
    TempDir t;
    const std::string f = t / "ck.h5", prev = f + ".prev";
    write_checkpoint(f, make_checkpoint(10), true);
    write_checkpoint(f, make_checkpoint(20), true); // prev: step 10
    const std::string prev_bytes = bytes_of(prev);
    fs::resize_file(f, fs::file_size(f) / 2); // a crash in a copy, a full disk
    BOOST_CHECK(!is_valid_checkpoint(f));
    // Still recognisably ours (its first bytes), so it is a valid target...
    BOOST_CHECK_NO_THROW(check_checkpoint_target(f));
    // ...replaced by the new state, while the good .prev stays as it was.
    write_checkpoint(f, make_checkpoint(30), true);
    BOOST_CHECK_EQUAL(read_checkpoint(f).state.step, 30);
    BOOST_CHECK(bytes_of(prev) == prev_bytes);
    // Cut to its first 100 bytes (only the user block left): still ours, still not rotated.
    fs::resize_file(f, 100);
    write_checkpoint(f, make_checkpoint(31), true);
    BOOST_CHECK(bytes_of(prev) == prev_bytes);
    BOOST_CHECK_EQUAL(read_checkpoint(f).state.step, 31);
}

// ---- Temporaries of dead processes ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stale_temporaries_of_dead_processes_are_removed_live_ones_kept)
{
    TempDir t;
    const std::string f = t / "ck.h5", host = atomic_file::host_name();
    // Live: our parent (ctest or a shell), which outlives this test; not our own pid, which is
    // in the name of our own next temporary.
    const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getppid());
    const std::string rnd = ".a1B2c3D4e5F6"; // the random part of a name: 12 letters and digits
    const std::vector<std::string> stale{f + ".tmp." + host + "." + dead + rnd,
                                         f + ".prev.tmp." + host + "." + dead + rnd,
                                         f + ".tmp." + host + "." + dead,            // as the previous build named them
                                         f + ".tmp." + dead};                        // older still: this host's
    const std::vector<std::string> kept{f + ".tmp." + host + "." + live + rnd,       // a live process
                                        f + ".tmp.other-node.example." + dead + rnd, // another host's
                                        f + ".tmp.notes",                            // not a pid
                                        t / "other.h5.tmp." + host + "." + dead + rnd}; // another file's
    for (const auto& p : stale) write_text(p, "stale");
    for (const auto& p : kept) write_text(p, "keep");
    // The early check removes them, as does every write.
    check_checkpoint_target(f);
    for (const auto& p : stale) BOOST_CHECK_MESSAGE(!fs::exists(p), "not removed: " << p);
    for (const auto& p : kept) BOOST_CHECK_MESSAGE(fs::exists(p), "removed: " << p);
    write_text(stale[0], "stale again");
    write_checkpoint(f, make_checkpoint(1), true);
    BOOST_CHECK(!fs::exists(stale[0]));
    for (const auto& p : kept) BOOST_CHECK_MESSAGE(fs::exists(p), "removed: " << p);
}

// ---- Format: user block, and files of older builds ----------------------------------------------

BOOST_AUTO_TEST_CASE(new_files_start_with_the_magic_and_old_files_are_still_read)
{
    TempDir t;
    const std::string f = t / "new.h5", old = t / "old.h5";
    const Checkpoint ck = make_checkpoint(12);
    write_checkpoint(f, ck);
    BOOST_CHECK_EQUAL(bytes_of(f).substr(0, 17), "ompml-checkpoint\n");
    BOOST_CHECK_EQUAL(std::string(kCheckpointMagic), "ompml-checkpoint\n");
    {
        h5::Handle file = h5::open_read(f);
        h5::Handle fcpl(H5Fget_create_plist(file));
        hsize_t ub = 0;
        H5_CHECK(H5Pget_userblock(fcpl, &ub));
        BOOST_CHECK_EQUAL(ub, 512u);
    }
    // A file as older builds wrote it: the same objects, no user block (copied with H5Ocopy).
    {
        h5::Handle src = h5::open_read(f);
        h5::Handle dst = h5::create(old);
        for (const char* g : {"config", "params", "optimizer", "state"})
            H5_CHECK(H5Ocopy(src, g, dst, g, H5P_DEFAULT, H5P_DEFAULT));
    }
    BOOST_CHECK(bytes_of(old).substr(0, 8) == "\x89HDF\r\n\x1a\n"); // HDF5 from byte 0
    const Checkpoint back = read_checkpoint(old);
    BOOST_CHECK_EQUAL(back.state.step, 12);
    BOOST_CHECK(std::memcmp(back.params.data(), ck.params.data(), ck.params.size() * sizeof(float)) == 0);
    BOOST_CHECK(back.v == ck.v);
    // It is a checkpoint for the target rules too, and rotates like one.
    BOOST_CHECK_NO_THROW(check_checkpoint_target(old));
    write_checkpoint(old, make_checkpoint(13), true);
    BOOST_CHECK_EQUAL(read_checkpoint(old + ".prev").state.step, 12);
    BOOST_CHECK_EQUAL(read_checkpoint(old).state.step, 13);
}

// ---- Values: non-finite tensors and impossible counters ------------------------------------------

BOOST_AUTO_TEST_CASE(non_finite_tensors_are_refused_on_read)
{
    TempDir t;
    const std::string f = t / "ck.h5";
    const struct {
        const char* dataset;
        hsize_t index;
        float value;
        const char* named;
    } cases[] = {
        {"params/layer0/weight", 6, std::nanf(""), "/params/layer0/weight[1, 2] is nan"},
        {"params/layer1/bias", 1, INFINITY, "/params/layer1/bias[1] is inf"},
        {"optimizer/m/layer1/weight", 4, -INFINITY, "/optimizer/m/layer1/weight[1, 1] is -inf"},
        {"optimizer/v/layer0/bias", 2, std::nanf(""), "/optimizer/v/layer0/bias[2] is nan"},
    };
    for (const auto& c : cases) {
        write_checkpoint(f, make_checkpoint(3));
        poke_float(f, c.dataset, c.index, c.value);
        const std::string m =
            error_of([&] { read_checkpoint(f); }, {f + ": " + c.named, "cannot be resumed or evaluated"});
        BOOST_CHECK(m.find("truncated") == std::string::npos); // readable, but refused
        BOOST_CHECK(!is_valid_checkpoint(f));
    }
}

BOOST_AUTO_TEST_CASE(non_finite_tensors_are_never_written)
{
    TempDir t;
    const std::string f = t / "ck.h5";
    write_checkpoint(f, make_checkpoint(6), true);
    const std::string before = bytes_of(f);
    Checkpoint bad = make_checkpoint(7);
    bad.params[20] = std::nanf(""); // layer 1 (3 -> 2): weight 6 values from 15, bias 21..22
    error_of([&] { write_checkpoint(f, bad, true); },
             {"step 7: refusing to write checkpoint " + f, "/params/layer1/weight[1, 2] is nan"});
    bad = make_checkpoint(7);
    bad.v[22] = INFINITY;
    error_of([&] { write_checkpoint(f, bad, true); }, {"step 7", "/optimizer/v/layer1/bias[1] is inf"});
    BOOST_CHECK(bytes_of(f) == before);
    BOOST_CHECK(!fs::exists(f + ".prev"));
}

BOOST_AUTO_TEST_CASE(negative_or_inconsistent_counters_are_refused)
{
    TempDir t;
    const std::string f = t / "ck.h5";
    const struct {
        const char* group;
        const char* attr;
        std::int64_t value;
        const char* named;
    } cases[] = {
        {"state", "step", -1, "/state step is -1 (must be >= 0)"},
        {"state", "epoch", -2, "/state epoch is -2 (must be >= 0)"},
        {"state", "step_in_epoch", -3, "/state step_in_epoch is -3 (must be >= 0)"},
        {"optimizer", "steps", -4, "/optimizer steps is -4 (must be >= 0)"},
        {"optimizer", "steps", 5, "/optimizer steps 5 differs from /state step 12 (inconsistent)"},
        {"state", "step_in_epoch", 13, "/state step_in_epoch 13 exceeds /state step 12"},
        {"state", "epoch", 40, "/state epoch 40 exceeds /state step 12"},
    };
    for (const auto& c : cases) {
        write_checkpoint(f, make_checkpoint(12));
        {
            h5::Handle file = h5::open_rw(f);
            h5::Handle g = h5::open_group(file, c.group);
            h5::set_attr(g, c.attr, c.value);
        }
        error_of([&] { read_checkpoint(f); }, {f + ": " + c.named});
    }
}
