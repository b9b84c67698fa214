// Collective streaming reads under MPI (ctest label mpi; run on 2 and 4 ranks, and on 2 ranks
// with MPI_THREAD_FUNNELED, "-- --funneled", where the loader must fall back to independent
// reads and still give the same batches).
//
// The reference is the in-memory loader of the same rank, rank count and seed: it reads the
// whole split with one plain read and gathers rows in memory, a path that shares nothing with
// the collective read but the epoch order. Batches must match bit for bit (rows, global rows,
// step, the bytes of x and y), so a wrong selection, a wrong order of rows within a batch or a
// missed empty read shows up as a difference or a hang (ctest's timeout).
#define BOOST_TEST_MODULE test_io_mpi
#include "backend/backend.hpp"
#include "io/dataset.hpp"
#include "io/h5.hpp"
#include "io/loader.hpp"
#include "io/synth.hpp"

#include <boost/test/unit_test.hpp>

#include <mpi.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace ompml;

namespace {

bool g_funneled = false; // started with "-- --funneled"

// MPI for the whole run: MPI_THREAD_MULTIPLE (what MpiSession asks for), or FUNNELED to check
// the fallback.
struct MpiFixture {
    MpiFixture()
    {
        auto& suite = boost::unit_test::framework::master_test_suite();
        for (int i = 1; i < suite.argc; ++i) g_funneled |= std::string(suite.argv[i]) == "--funneled";
        int got = 0;
        MPI_Init_thread(&suite.argc, &suite.argv, g_funneled ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE, &got);
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    ~MpiFixture() { MPI_Finalize(); }
};
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

int world_rank()
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int world_size()
{
    int s = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}
// How many ranks say `yes`.
int count_ranks(bool yes)
{
    int n = yes ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    return n;
}

// A directory every rank sees (rank 0 makes it, the others get its name), removed afterwards.
struct SharedDir {
    fs::path dir;
    SharedDir()
    {
        std::string name;
        if (world_rank() == 0) {
            dir = fs::temp_directory_path() / ("ompml_test_io_mpi_" + std::to_string(::getpid()));
            fs::create_directories(dir);
            name = dir.string();
        }
        int len = static_cast<int>(name.size());
        MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
        name.resize(static_cast<std::size_t>(len));
        MPI_Bcast(name.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
        dir = name;
    }
    ~SharedDir()
    {
        MPI_Barrier(MPI_COMM_WORLD); // nobody still reads the files
        std::error_code ec;
        if (world_rank() == 0) fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& n) const { return (dir / n).string(); }
};

// The test files, written by rank 0. 700 train rows of 784 features: several storage chunks
// (334 rows of uint8, 83 of float32), so a batch's runs span chunks; 700 = 10*64 + 60 and
// 233*3 + 1, so both batch sizes below end with a short batch.
struct Files {
    SharedDir dir;
    std::string u8_compressed = dir / "u8z.h5"; // what synth and the importers write
    std::string f32_plain = dir / "f32.h5";     // unfiltered: collective reads by default
    Files()
    {
        if (world_rank() == 0) {
            SynthOptions o;
            o.train = 700;
            o.test = 50;
            o.features = 784;
            o.classes = 4;
            o.seed = 5;
            write_synth(o, u8_compressed);
            o.dtype = h5::Dtype::f32;
            write_uncompressed(o, f32_plain);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    // synth's samples, stored without filters (compress level 0).
    static void write_uncompressed(const SynthOptions& o, const std::string& path)
    {
        h5::create_atomically(path, [&](hid_t f) {
            for (const bool test : {false, true}) {
                const std::uint64_t n = test ? o.test : o.train;
                std::vector<float> x(n * o.features);
                std::vector<std::int32_t> y(n);
                synth_rows(o, test, 0, n, x.data(), y.data());
                SplitWriter(f, test ? Split::test : Split::train, n, {o.features}, o.dtype, 0)
                    .write(0, n, x.data(), y.data());
            }
            set_dataset_attributes(f, o.classes, "test_io_mpi", "test_io_mpi");
        });
    }
};

// One batch as it came out of the loader, downloaded from the device.
struct HostBatch {
    std::int64_t step = 0;
    int rows = 0, global_rows = 0;
    std::vector<float> x;        // (rows, F)
    std::vector<std::int32_t> y; // (rows)
};

HostBatch download(const Loader& L, const DeviceBatch& b, const MemorySpace& mem)
{
    HostBatch h{b.step_in_epoch, b.rows, b.global_rows, std::vector<float>(b.rows * L.features()),
                std::vector<std::int32_t>(b.rows)};
    if (b.rows > 0) {
        mem.to_host(h.x.data(), b.x, h.x.size() * sizeof(float));
        mem.to_host(h.y.data(), b.y, h.y.size() * sizeof(std::int32_t));
    }
    return h;
}

// Up to `limit` batches of the loader's current epoch.
std::vector<HostBatch> take(Loader& L, const Backend& be, std::int64_t limit = -1)
{
    std::vector<HostBatch> out;
    DeviceBatch b;
    while ((limit < 0 || static_cast<std::int64_t>(out.size()) < limit) && L.next(b))
        out.push_back(download(L, b, be.memory()));
    return out;
}

void check_same(const std::vector<HostBatch>& got, const std::vector<HostBatch>& ref, const std::string& what)
{
    BOOST_REQUIRE_MESSAGE(got.size() == ref.size(), what << ": " << got.size() << " batches, expected " << ref.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        const HostBatch &g = got[i], &r = ref[i];
        const bool same = g.step == r.step && g.rows == r.rows && g.global_rows == r.global_rows &&
            std::memcmp(g.x.data(), r.x.data(), g.x.size() * sizeof(float)) == 0 && g.y == r.y &&
            g.x.size() == r.x.size();
        BOOST_CHECK_MESSAGE(same,
                            what << ": rank " << world_rank() << ": batch " << i << " (step " << g.step << ", "
                                 << g.rows << " of " << g.global_rows << " rows) differs from the "
                                 << "in-memory loader's (step " << r.step << ", " << r.rows << " of " << r.global_rows
                                 << " rows)");
    }
}

LoaderOptions options(const std::string& path, int batch)
{
    LoaderOptions o;
    o.path = path;
    o.global_batch = batch;
    o.rank = world_rank();
    o.nranks = world_size();
    o.seed = 11;
    return o;
}

LoaderOptions collective(LoaderOptions o, StreamReads reads = StreamReads::automatic)
{
    o.streaming = true;
    o.comm = MPI_COMM_WORLD;
    o.reads = reads;
    return o;
}

// What read_mode() must say for a loader that should read collectively.
std::string expected_mode()
{
    return g_funneled ? "independent reads: collective reads from the reader thread need MPI_THREAD_MULTIPLE"
                      : "collective MPI-IO reads";
}

} // namespace

BOOST_AUTO_TEST_CASE(collective_streaming_equals_memory)
{
    const Files files;
    auto be = make_backend("omp");
    const int P = world_size();
    struct Case {
        std::string path;
        StreamReads reads;
    };
    // Compressed files read collectively only when asked; unfiltered ones by default.
    for (const Case& c :
         {Case{files.u8_compressed, StreamReads::collective}, Case{files.f32_plain, StreamReads::automatic}}) {
        // 3 rows a batch: on 4 ranks one rank has no rows in every batch, and three in the last.
        for (const int B : {64, 3}) {
            const std::string what = c.path + " B=" + std::to_string(B) + " P=" + std::to_string(P);
            Loader mem(*be, options(c.path, B));
            Loader str(*be, collective(options(c.path, B), c.reads));
            BOOST_CHECK_EQUAL(str.read_mode(), expected_mode());
            bool saw_empty = false, saw_short = false;
            for (const std::int64_t epoch : {0, 1}) {
                mem.start_epoch(epoch);
                str.start_epoch(epoch);
                const std::vector<HostBatch> ref = take(mem, *be), got = take(str, *be);
                check_same(got, ref, what + " epoch " + std::to_string(epoch));
                for (const HostBatch& h : got) {
                    saw_empty |= h.rows == 0;
                    saw_short |= h.global_rows < B;
                }
            }
            // Resume mid-epoch, and a restart while the reader is a batch ahead.
            mem.start_epoch(2, 5);
            str.start_epoch(2, 5);
            check_same(take(str, *be, 2), take(mem, *be, 2), what + " epoch 2 from step 5");
            mem.start_epoch(2, 1);
            str.start_epoch(2, 1);
            check_same(take(str, *be), take(mem, *be), what + " epoch 2 from step 1");
            BOOST_CHECK(saw_short);
            if (P > B) BOOST_CHECK_MESSAGE(count_ranks(saw_empty) > 0, what << ": no rank had an empty batch");
        }
    }
}

BOOST_AUTO_TEST_CASE(train_and_test_loaders_take_turns)
{
    // The trainer's pattern when --max-steps ends an epoch early: the train reader is a batch
    // ahead when the test loader starts; then the train loader goes on. Ranks arrive at the
    // switch at different times, so without turn-taking the two readers would take h5::lock()
    // in different orders on different ranks, inside their collective reads.
    const Files files;
    auto be = make_backend("omp");
    LoaderOptions train = options(files.f32_plain, 16), test = options(files.f32_plain, 7);
    test.split = Split::test;
    test.shuffle = false;
    Loader train_mem(*be, train), test_mem(*be, test);
    Loader train_str(*be, collective(train)), test_str(*be, collective(test));
    train_mem.start_epoch(0);
    const std::vector<HostBatch> train_ref = take(train_mem, *be);
    test_mem.start_epoch(0);
    const std::vector<HostBatch> test_ref = take(test_mem, *be);
    for (int round = 0; round < 3; ++round) {
        train_str.start_epoch(0);
        std::vector<HostBatch> got = take(train_str, *be, 3 + round);
        std::this_thread::sleep_for(std::chrono::milliseconds(world_rank() % 2 == round % 2 ? 50 : 0));
        test_str.start_epoch(0);
        const std::vector<HostBatch> evaluated = take(test_str, *be);
        check_same(evaluated, test_ref, "test split, round " + std::to_string(round));
        const std::vector<HostBatch> rest = take(train_str, *be);
        got.insert(got.end(), rest.begin(), rest.end());
        check_same(got, train_ref, "train split around an evaluation, round " + std::to_string(round));
    }
}

BOOST_AUTO_TEST_CASE(bad_path_fails_on_every_rank)
{
    const SharedDir dir;
    auto be = make_backend("omp");
    const std::string missing = dir / "missing.h5";
    std::string msg;
    try {
        Loader L(*be, collective(options(missing, 8)));
    } catch (const Error& e) {
        msg = e.what();
    }
    BOOST_CHECK_EQUAL(msg, missing + ": no such file");
    BOOST_CHECK_EQUAL(count_ranks(msg == missing + ": no such file"), world_size());
}

BOOST_AUTO_TEST_CASE(rank_must_match_the_communicator)
{
    const Files files;
    auto be = make_backend("omp");
    LoaderOptions o = collective(options(files.f32_plain, 8));
    o.rank = (o.rank + 1) % o.nranks;
    std::string msg;
    try {
        Loader L(*be, o);
    } catch (const Error& e) {
        msg = e.what();
    }
    BOOST_CHECK_EQUAL(msg,
                      "loader: rank " + std::to_string(o.rank) + " of " + std::to_string(o.nranks) +
                          " differs from the communicator's rank " + std::to_string(world_rank()) + " of " +
                          std::to_string(world_size()));
}

BOOST_AUTO_TEST_CASE(independent_when_asked_or_alone)
{
    const Files files;
    auto be = make_backend("omp");
    Loader asked(*be, collective(options(files.f32_plain, 8), StreamReads::independent));
    BOOST_CHECK_EQUAL(asked.read_mode(), "independent reads");
    LoaderOptions self = collective(options(files.f32_plain, 8));
    self.comm = MPI_COMM_SELF;
    self.rank = 0;
    self.nranks = 1;
    BOOST_CHECK_EQUAL(Loader(*be, self).read_mode(), "independent reads");
    Loader compressed(*be, collective(options(files.u8_compressed, 8)));
    BOOST_CHECK_EQUAL(compressed.read_mode(),
                      g_funneled ? expected_mode()
                                 : "independent reads: compressed images (collective reads would bypass the chunk "
                                   "cache)");
}

// Keep this case last: it leaves files open until MPI_Finalize.
BOOST_AUTO_TEST_CASE(loader_destroyed_by_an_exception_closes_at_finalize)
{
    // Every rank fails with a collective loader mid-epoch: the loader must not close its file
    // collectively while unwinding (on an error path other ranks may never get there); the
    // file is closed in MPI_Finalize instead. Broken, the process would hang here or abort at
    // exit ("MPI_File_close() called after MPI_FINALIZE").
    const Files files;
    auto be = make_backend("omp");
    bool caught = false;
    try {
        Loader L(*be, collective(options(files.f32_plain, 16)));
        L.start_epoch(0);
        BOOST_REQUIRE_EQUAL(take(L, *be, 2).size(), 2u);
        throw std::runtime_error("failing on purpose");
    } catch (const std::runtime_error&) {
        caught = true;
    }
    BOOST_CHECK(caught);
}
