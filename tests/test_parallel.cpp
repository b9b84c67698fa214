// The MPI layer under mpirun (-np 2 and -np 4; the bf16 cases also -np 3) and as a singleton:
// session and device binding, configuration agreement, collective errors, parameter broadcast,
// and gradient averaging (fp32, and bf16 on the wire) checked against a sum computed on the host
// from every rank's (reproducible) data.
// Device buffers use omp memory, so the offload-check build exercises real device copies.
// Checks that depend on other ranks' data are reduced over all ranks before they are judged,
// so a wrong value fails every rank instead of leaving some waiting in the next collective.
#define BOOST_TEST_MODULE parallel
#include "parallel/comm.hpp"
#include "parallel/grad_sync.hpp"
#include "support.hpp"
#ifdef OMPML_WITH_CUDA
#include "backend/backend_cuda.hpp"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>

using namespace ompml;

namespace {

std::unique_ptr<MpiSession> g_mpi;

struct MpiFixture {
    MpiFixture()
    {
        g_mpi = std::make_unique<MpiSession>(nullptr, nullptr);
        g_mpi->bind_device();
    }
    ~MpiFixture() { g_mpi.reset(); }
};

MPI_Comm comm() { return g_mpi->comm(); }
int rank() { return g_mpi->rank(); }
int nranks() { return g_mpi->size(); }

// True on every rank when `ok` holds on every rank.
bool all_ranks(bool ok)
{
    int v = ok ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, comm());
    return v == 1;
}

// True when every rank holds bitwise the same floats.
bool same_on_all_ranks(const std::vector<float>& v)
{
    const std::uint64_t h =
        fnv1a64(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    std::uint64_t ext[2] = {h, ~h};
    MPI_Allreduce(MPI_IN_PLACE, ext, 2, MPI_UINT64_T, MPI_MAX, comm());
    return ext[0] == ~ext[1];
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

BOOST_AUTO_TEST_CASE(session_basics)
{
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    BOOST_CHECK_EQUAL(g_mpi->size(), size);
    BOOST_CHECK(rank() >= 0 && rank() < size);
    BOOST_CHECK_GE(g_mpi->thread_level(), MPI_THREAD_FUNNELED);
    BOOST_CHECK(g_mpi->local_rank() >= 0 && g_mpi->local_rank() < g_mpi->local_size());
    // Each node's local rank 0 reports its node's size: they add up to the world.
    int nodes_sum = g_mpi->local_rank() == 0 ? g_mpi->local_size() : 0;
    MPI_Allreduce(MPI_IN_PLACE, &nodes_sum, 1, MPI_INT, MPI_SUM, comm());
    BOOST_CHECK_EQUAL(nodes_sum, size);
    BOOST_CHECK(rank_prefix().find("[rank " + std::to_string(rank()) + "/") == 0);
    BOOST_TEST_MESSAGE(rank_prefix() << g_mpi->processor() << ": " << g_mpi->bind_device().describe());
}

BOOST_AUTO_TEST_CASE(device_choice)
{
    BOOST_CHECK_EQUAL(choose_local_device(0, 0), -1);
    BOOST_CHECK_EQUAL(choose_local_device(3, 4), 3);
    BOOST_CHECK_EQUAL(choose_local_device(5, 2), 1);
    // The hook (how the CUDA backend binds its device) gets local_rank % count.
    int chosen = -7;
    const DeviceBinding b = g_mpi->bind_device(DeviceHook{3, [&](int d) { chosen = d; }, "test"});
    BOOST_CHECK_EQUAL(chosen, g_mpi->local_rank() % 3);
    BOOST_CHECK_EQUAL(b.hook_device, chosen);
    BOOST_CHECK_EQUAL(b.omp_devices, omp_device_count());
    BOOST_CHECK_EQUAL(b.omp_device, choose_local_device(g_mpi->local_rank(), omp_device_count()));
}

namespace {

// Every rank's value, in rank order, on every rank.
std::vector<int> all_ranks_values(int v)
{
    std::vector<int> out(static_cast<std::size_t>(nranks()));
    MPI_Allgather(&v, 1, MPI_INT, out.data(), 1, MPI_INT, comm());
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(device_choice_with_fake_device_counts)
{
    // The rule every backend binds by, through a fake device API (as the cuda backend's hook,
    // without CUDA): written out for the rank counts ctest runs (1, 2, 4; all on one node).
    // -1: no device, the backend runs on the host.
    const std::map<int, std::map<int, std::vector<int>>> want{
        {1, {{0, {-1}}, {1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}}},
        {2, {{0, {-1, -1}}, {1, {0, 0}}, {2, {0, 1}}, {3, {0, 1}}, {4, {0, 1}}}},
        {4, {{0, {-1, -1, -1, -1}}, {1, {0, 0, 0, 0}}, {2, {0, 1, 0, 1}}, {3, {0, 1, 2, 0}}, {4, {0, 1, 2, 3}}}},
    };
    if (g_mpi->local_size() != nranks() || want.count(nranks()) == 0) {
        BOOST_TEST_MESSAGE("device_choice_with_fake_device_counts: needs 1, 2 or 4 ranks on one node; skipped");
        return;
    }
    for (const auto& [count, expected] : want.at(nranks())) {
        int calls = 0, chosen = -1;
        const DeviceBinding b = g_mpi->bind_device(DeviceHook{count, [&](int d) { ++calls, chosen = d; }, "FAKE"});
        BOOST_TEST_CONTEXT("fake devices " << count << ", rank " << rank())
        {
            BOOST_CHECK(all_ranks_values(b.hook_device) == expected);
            BOOST_CHECK_EQUAL(calls, count > 0 ? 1 : 0); // selected once, and never without a device
            BOOST_CHECK_EQUAL(chosen, count > 0 ? b.hook_device : -1);
            const std::string d = b.describe();
            const std::string where = count > 0
                ? "on FAKE device " + std::to_string(b.hook_device) + " of " + std::to_string(count)
                : std::string("without a FAKE device");
            BOOST_CHECK_MESSAGE(d.find(where) != std::string::npos, d);
            BOOST_CHECK_MESSAGE((d.find("ranks share devices") != std::string::npos) == (count > 0 && nranks() > count),
                                d);
        }
    }
}

BOOST_AUTO_TEST_CASE(device_binding_by_backend_name)
{
    // What the drivers call: the backend's own hook where it has one (cuda), OpenMP's default
    // device otherwise; the report names the backend and the device it got.
    const DeviceBinding omp = g_mpi->bind_device("omp");
    BOOST_CHECK_EQUAL(omp.backend, "omp");
    BOOST_CHECK(omp.hook_api.empty() && omp.hook_device == -1);
    BOOST_CHECK_EQUAL(omp.omp_device, choose_local_device(g_mpi->local_rank(), omp_device_count()));
    BOOST_CHECK_MESSAGE(omp.describe().find("omp backend on ") != std::string::npos, omp.describe());
    const DeviceBinding ref = g_mpi->bind_device("ref");
    BOOST_CHECK_MESSAGE(ref.describe().find("ref backend on the host") != std::string::npos, ref.describe());

    const DeviceBinding cu = g_mpi->bind_device("cuda");
#ifdef OMPML_WITH_CUDA
    // The cuda backend's hook, through the factory: CUDA's own count, and the device it set.
    const int n = cuda_device_count();
    BOOST_CHECK_EQUAL(cu.hook_api, "CUDA");
    BOOST_CHECK_EQUAL(cu.hook_devices, n);
    BOOST_CHECK_EQUAL(cu.hook_device, choose_local_device(g_mpi->local_rank(), n));
    if (n > 0) BOOST_CHECK_EQUAL(cuda_current_device(), g_mpi->local_rank() % n);
    BOOST_TEST_MESSAGE(rank_prefix() << cu.describe());
#else
    BOOST_CHECK(cu.hook_api.empty() && cu.hook_device == -1); // not built: make_backend says so
#endif
    g_mpi->bind_device("omp"); // as the fixture left it, for the tests below
}

BOOST_AUTO_TEST_CASE(gather_strings_in_rank_order)
{
    // Lengths differ per rank (rank r sends r + 1 copies of its digit), including an empty one.
    const std::string mine =
        rank() == 1 ? std::string() : std::string(static_cast<std::size_t>(rank() + 1), char('0' + rank() % 10));
    const std::vector<std::string> got = gather_strings(comm(), mine);
    bool ok = got.size() == (rank() == 0 ? static_cast<std::size_t>(nranks()) : 0u);
    for (int r = 0; ok && r < static_cast<int>(got.size()); ++r)
        ok = got[static_cast<std::size_t>(r)] ==
            (r == 1 ? std::string() : std::string(static_cast<std::size_t>(r + 1), char('0' + r % 10)));
    BOOST_CHECK(all_ranks(ok));
}

BOOST_AUTO_TEST_CASE(fnv1a64_known_values)
{
    // Published FNV-1a 64-bit test vectors.
    BOOST_CHECK_EQUAL(fnv1a64(""), 0xcbf29ce484222325ull);
    BOOST_CHECK_EQUAL(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
    BOOST_CHECK_EQUAL(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

BOOST_AUTO_TEST_CASE(agree_on_same_config)
{
    const Config cfg{{"layers", "784,256,10"}, {"seed", "42"}, {"batch", "256"}};
    BOOST_CHECK_NO_THROW(agree(comm(), cfg));
}

BOOST_AUTO_TEST_CASE(agree_names_the_difference_on_every_rank)
{
    if (nranks() < 2) return; // nothing can differ
    Config cfg{{"layers", "784,256,10"}, {"seed", "42"}, {"batch", rank() == 1 ? "64" : "32"}};
    if (rank() == nranks() - 1) cfg.emplace_back("extra", "x");
    std::string msg;
    try {
        agree(comm(), cfg);
    } catch (const CollectiveError& e) {
        msg = e.what();
    }
    BOOST_TEST_MESSAGE(rank_prefix() << msg);
    BOOST_CHECK(all_ranks(!msg.empty()));
    BOOST_CHECK_MESSAGE(msg.find("batch: rank 0 has '32', rank 1 has '64'") != std::string::npos, msg);
    BOOST_CHECK_MESSAGE(msg.find("extra: rank 0 has no such setting, rank " + std::to_string(nranks() - 1) +
                                 " has 'x'") != std::string::npos,
                        msg);
    BOOST_CHECK(msg.find("seed") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(collective_ok_when_all_succeed)
{
    BOOST_CHECK_NO_THROW(collective_ok(comm(), true, ""));
    BOOST_CHECK_NO_THROW(collective_try(comm(), [] {}));
}

BOOST_AUTO_TEST_CASE(collective_ok_spreads_one_ranks_error)
{
    const int bad = nranks() - 1;
    const std::string err = "cannot open 'data-" + std::to_string(rank()) + ".h5': no such file";
    std::string msg;
    int failed = -2, count = -2;
    try {
        collective_ok(comm(), rank() != bad, rank() == bad ? err : "");
    } catch (const CollectiveError& e) {
        msg = e.what();
        failed = e.failed_rank();
        count = e.failed_count();
    }
    BOOST_CHECK(all_ranks(!msg.empty()));
    BOOST_CHECK_EQUAL(failed, bad);
    BOOST_CHECK_EQUAL(count, 1);
    const std::string want = "rank " + std::to_string(bad) + ": cannot open 'data-" + std::to_string(bad) + ".h5'";
    BOOST_CHECK_MESSAGE(msg.find(want) == 0, msg);
}

BOOST_AUTO_TEST_CASE(collective_try_reports_the_lowest_failing_rank)
{
    if (nranks() < 3) return;
    std::string msg;
    try {
        collective_try(comm(), [] {
            if (rank() == 1 || rank() == 2) throw Error("bad checkpoint on rank " + std::to_string(rank()));
        });
    } catch (const CollectiveError& e) {
        msg = e.what();
        BOOST_CHECK_EQUAL(e.failed_rank(), 1);
        BOOST_CHECK_EQUAL(e.failed_count(), 2);
    }
    BOOST_CHECK(all_ranks(!msg.empty()));
    BOOST_CHECK_MESSAGE(msg.find("rank 1: bad checkpoint on rank 1 (2 ranks failed") == 0, msg);
}

BOOST_AUTO_TEST_CASE(broadcast_parameters_from_rank_0)
{
    const std::size_t n = 10007;
    const auto root_values = test::random_floats(n, 7);
    DeviceBuffer<float> params(omp_memory(), rank() == 0 ? root_values : test::random_floats(n, 8 + rank()));
    broadcast(comm(), params);
    const auto got = params.to_vector();
    BOOST_CHECK(all_ranks(std::memcmp(got.data(), root_values.data(), n * sizeof(float)) == 0));
}

BOOST_AUTO_TEST_CASE(allreduce_sum_of_scalars)
{
    double v[2] = {1.0, static_cast<double>(rank())};
    allreduce_sum(comm(), v, 2);
    BOOST_CHECK_EQUAL(v[0], nranks());
    BOOST_CHECK_EQUAL(v[1], nranks() * (nranks() - 1) / 2.0);
}

namespace {

// Layer sizes whose total (1376) is no multiple of the small bucket (100 floats).
const std::vector<std::size_t> kLayers{37, 1000, 5, 333, 1};

std::vector<float> rank_grad(std::size_t n, int r, int step) { return test::random_floats(n, 100 + 16 * step + r); }

// The global sum, in double, from every rank's data regenerated on this rank.
std::vector<float> host_sum(std::size_t n, int step)
{
    std::vector<double> acc(n, 0.0);
    for (int r = 0; r < nranks(); ++r) {
        const auto g = rank_grad(n, r, step);
        for (std::size_t i = 0; i < n; ++i) acc[i] += g[i];
    }
    return std::vector<float>(acc.begin(), acc.end());
}

std::vector<std::size_t> layer_offsets()
{
    std::vector<std::size_t> offsets{0};
    for (const auto s : kLayers) offsets.push_back(offsets.back() + s);
    return offsets;
}

// One step: this rank writes its gradient for `step` into the averager's buffer, marks the
// layers in `order`, finishes; returns the sums on the host.
// This rank's gradient into the averager's buffers as backward writes it: the floats, and
// their bf16 rounding where the ranks exchange bf16 (data16()).
void put_grad(GradientAverager& avg, const MemorySpace& mem, const std::vector<float>& g)
{
    mem.to_device(avg.data(), g.data(), g.size() * sizeof(float));
    if (avg.data16() == nullptr) return;
    std::vector<bf16> h(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) h[i] = to_bf16(g[i]);
    mem.to_device(avg.data16(), h.data(), h.size() * sizeof(bf16));
}

// The sum after finish(), where the optimizer reads it: data(), or data16() widened.
std::vector<float> get_sum(GradientAverager& avg, const MemorySpace& mem, std::size_t n)
{
    std::vector<float> got(n);
    if (avg.data16() == nullptr) {
        mem.to_host(got.data(), avg.data(), n * sizeof(float));
        return got;
    }
    std::vector<bf16> h(n);
    mem.to_host(h.data(), avg.data16(), n * sizeof(bf16));
    for (std::size_t i = 0; i < n; ++i) got[i] = to_float(h[i]);
    return got;
}

std::vector<float> sum_step(GradientAverager& avg, const MemorySpace& mem, const std::vector<std::size_t>& order,
                            int step)
{
    const std::vector<std::size_t> offsets = layer_offsets();
    const std::size_t n = offsets.back();
    put_grad(avg, mem, rank_grad(n, rank(), step));
    for (const std::size_t layer : order) avg.bucket_ready(offsets[layer], kLayers[layer]);
    avg.finish();
    return get_sum(avg, mem, n);
}

// Two steps (the averager is reused step after step): each rank writes its gradient into the
// averager's buffer, marks the layers in `order`, finishes; the sums are checked on the host.
void check_steps(GradientAverager& avg, const MemorySpace& mem, const std::vector<std::size_t>& order, int want_buckets,
                 const std::string& what)
{
    const std::size_t n = layer_offsets().back();
    BOOST_TEST_MESSAGE(rank_prefix() << what << " (" << avg.transport() << ")");
    for (int step = 0; step < 2; ++step) {
        const std::vector<float> got = sum_step(avg, mem, order, step);
        // Each element sums P values in [-1, 1]: float rounding stays well below 1e-6 absolute.
        test::check_close(got, host_sum(n, step), 1e-6, 1e-5, what + " step " + std::to_string(step));
        BOOST_CHECK_MESSAGE(same_on_all_ranks(got), what << ": ranks hold different sums");
        const GradSyncStats& st = avg.last_step();
        BOOST_CHECK_EQUAL(st.buckets, nranks() > 1 ? want_buckets : 0);
        BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(float) : 0);
        BOOST_CHECK(st.wait_s <= st.mpi_s && st.mpi_s >= 0.0);
    }
    BOOST_CHECK_EQUAL(avg.total().steps, 2);
}

// The MPI transport on the caller's buffer.
void check_averager(const MemorySpace& mem, bool force_staging, double bucket_mb, int want_buckets,
                    const std::vector<std::size_t>& order)
{
    const std::size_t n = layer_offsets().back();
    DeviceBuffer<float> grads(mem, n);
    GradSyncOptions opt;
    opt.bucket_mb = bucket_mb;
    opt.force_staging = force_staging;
    GradientAverager avg(comm(), mem, grads.data(), n, opt);
    BOOST_CHECK(avg.data() == grads.data());
    BOOST_CHECK(!avg.shared_memory());
    if (nranks() > 1) BOOST_CHECK_EQUAL(avg.staged(), force_staging || &mem != &host_memory());
    check_steps(avg, mem, order, want_buckets,
                std::string(mem.name()) + (force_staging ? " staged" : "") + " bucket_mb " + std::to_string(bucket_mb));
}

const double kSmallBucketMb = 100.0 * sizeof(float) / 1048576.0; // 100 floats

} // namespace

BOOST_AUTO_TEST_CASE(gradient_buckets_in_reverse_layer_order)
{
    const std::vector<std::size_t> reverse{4, 3, 2, 1, 0};
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const bool staging : {false, true}) {
            // Reverse order with 100-float buckets: [1 + 333] goes, [5 + 1000] goes, [37] in finish().
            check_averager(*mem, staging, kSmallBucketMb, 3, reverse);
            check_averager(*mem, staging, 25.0, 1, reverse); // everything fits one bucket
            check_averager(*mem, staging, 0.0, 1, reverse);  // no overlap: one bucket in finish()
        }
}

BOOST_AUTO_TEST_CASE(gradient_ranges_in_any_order)
{
    // A range not adjacent to the pending one closes it. 100-float buckets: 2 | 0 | 3 (full) |
    // 4 | 1 (full); one bucket in finish(): 2 | 0 | 3+4 (adjacent above) | 1.
    check_averager(omp_memory(), false, kSmallBucketMb, 5, {2, 0, 3, 4, 1});
    check_averager(omp_memory(), true, 0.0, 4, {2, 0, 3, 4, 1});
}

BOOST_AUTO_TEST_CASE(gradient_large_buffer_whole)
{
    const std::size_t n = (std::size_t{3} << 20) + 17; // 12 MB: several 1 MB buckets
    DeviceBuffer<float> grads(omp_memory(), rank_grad(n, rank(), 0));
    GradSyncOptions opt;
    opt.bucket_mb = 1.0;
    GradientAverager avg(comm(), omp_memory(), grads.data(), n, opt);
    for (std::size_t hi = n; hi > 0;) { // 1000-element "layers", last first
        const std::size_t lo = hi > 1000 ? hi - 1000 : 0;
        avg.bucket_ready(lo, hi - lo);
        hi = lo;
    }
    avg.finish();
    test::check_close(grads.to_vector(), host_sum(n, 0), 1e-6, 1e-5, "12 MB gradient in 1 MB buckets");
    if (nranks() > 1) BOOST_CHECK_EQUAL(avg.last_step().buckets, 12); // 11 x 263 layers, then the rest
    BOOST_TEST_MESSAGE(rank_prefix() << "12 MB: mpi " << avg.last_step().mpi_s * 1e3 << " ms, exposed wait "
                                     << avg.last_step().wait_s * 1e3 << " ms, copies " << avg.last_step().copy_s * 1e3
                                     << " ms, " << avg.transport());
}

BOOST_AUTO_TEST_CASE(gradient_misuse_is_an_error)
{
    const std::size_t n = 100;
    DeviceBuffer<float> grads(omp_memory(), rank_grad(n, rank(), 0));
    GradientAverager avg(comm(), omp_memory(), grads.data(), n, GradSyncOptions{});
    BOOST_CHECK_THROW(avg.bucket_ready(90, 11), Error); // past the end
    avg.bucket_ready(50, 50);
    BOOST_CHECK_THROW(avg.bucket_ready(40, 20), Error); // overlaps [50, 100)
    BOOST_CHECK_THROW(avg.finish(), Error);             // [0, 50) never marked: waits, then throws
    // The failed step left nothing behind: a whole step works again.
    grads.upload(rank_grad(n, rank(), 1));
    avg.allreduce();
    test::check_close(grads.to_vector(), host_sum(n, 1), 1e-6, 1e-5, "step after a misuse");
}

// --- the averager's own buffer: shared memory on one node, MPI otherwise ----------------------

BOOST_AUTO_TEST_CASE(gradient_owned_buffer_every_transport)
{
    const std::vector<std::size_t> reverse{4, 3, 2, 1, 0};
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const GradTransport t : {GradTransport::automatic, GradTransport::mpi, GradTransport::shared}) {
            const bool host = mem == &host_memory();
            if (t == GradTransport::shared && !host && nranks() > 1) continue; // an error: next case
            GradSyncOptions opt;
            opt.transport = t;
            opt.bucket_mb = kSmallBucketMb;
            GradientAverager avg(comm(), *mem, layer_offsets().back(), opt);
            // mpirun starts every test rank on this one machine, so shm is possible with host memory.
            const bool shm = nranks() > 1 && host && t != GradTransport::mpi;
            BOOST_CHECK_EQUAL(avg.shared_memory(), shm);
            std::vector<float> zeros(layer_offsets().back());
            mem->to_host(zeros.data(), avg.data(), zeros.size() * sizeof(float));
            BOOST_CHECK(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0.0f; }));
            // shm sums every marked range (5 layers); MPI sends the 3 buckets of 100 floats.
            check_steps(avg, *mem, reverse, shm ? 5 : 3,
                        std::string(mem->name()) + " owned, transport " + enum_name(t));
        }
}

BOOST_AUTO_TEST_CASE(gradient_shm_sum_is_the_rank_order_sum)
{
    // NodeSum adds the ranks in order 0..P-1 in float: exactly this loop, bit for bit.
    const std::size_t n = 100003;
    GradSyncOptions opt;
    opt.transport = GradTransport::shared;
    GradientAverager avg(comm(), host_memory(), n, opt);
    const std::vector<float> mine = rank_grad(n, rank(), 7);
    std::copy(mine.begin(), mine.end(), avg.data());
    avg.bucket_ready(n / 3, n - n / 3);
    avg.bucket_ready(0, n / 3);
    avg.finish();
    std::vector<float> want(n, 0.0f);
    for (int r = 0; r < nranks(); ++r) {
        const std::vector<float> g = rank_grad(n, r, 7);
        for (std::size_t i = 0; i < n; ++i) want[i] = r == 0 ? g[i] : want[i] + g[i];
    }
    BOOST_CHECK(all_ranks(std::memcmp(want.data(), avg.data(), n * sizeof(float)) == 0));
}

BOOST_AUTO_TEST_CASE(gradient_shm_misuse_is_an_error)
{
    GradSyncOptions opt;
    opt.transport = GradTransport::shared;
    std::vector<float> buf(10);
    BOOST_CHECK_EXCEPTION(GradientAverager(comm(), host_memory(), buf.data(), buf.size(), opt), Error,
                          [](const Error& e) { return std::strstr(e.what(), "own buffer") != nullptr; });
    if (nranks() == 1) return;
    if (&omp_memory() != &host_memory()) // offload-check: the gradient is device memory
        BOOST_CHECK_EXCEPTION(GradientAverager(comm(), omp_memory(), 10, opt), Error, [](const Error& e) {
            return std::strstr(e.what(), "shm is not possible here: the gradient is in") != nullptr;
        });

    // Ranks marking different ranges: every rank throws, none waits forever.
    const std::size_t n = 1000;
    auto mismatch = [&](const std::vector<std::pair<std::size_t, std::size_t>>& root_ranges,
                        const std::vector<std::pair<std::size_t, std::size_t>>& other_ranges) {
        GradientAverager avg(comm(), host_memory(), n, opt);
        for (const auto& [off, cnt] : rank() == 0 ? root_ranges : other_ranges) avg.bucket_ready(off, cnt);
        BOOST_CHECK_EXCEPTION(avg.finish(), Error, [](const Error& e) {
            return std::strstr(e.what(), "ranks marked different gradient ranges") != nullptr;
        });
    };
    mismatch({{0, n}}, {{500, 500}, {0, 500}});               // fewer ranges on rank 0
    mismatch({{500, 500}, {0, 500}}, {{0, n}});               // more ranges on rank 0
    mismatch({{400, 600}, {0, 400}}, {{500, 500}, {0, 500}}); // as many ranges, other sizes
}

// --- compressed gradients: bf16 exchanged, fp32 sums (GradSyncOptions::dtype) ------------------

namespace {

// What the bf16 sum must give, bit for bit (grad_sync.hpp): every rank's value rounded to bf16,
// added in float in rank order, the sum rounded to bf16 once. One rank exchanges nothing: its
// gradient stays as it is.
std::vector<float> bf16_rank_order_sum(std::size_t n, int step)
{
    if (nranks() == 1) return rank_grad(n, 0, step);
    std::vector<float> acc(n);
    for (int r = 0; r < nranks(); ++r) {
        const std::vector<float> g = rank_grad(n, r, step);
        for (std::size_t i = 0; i < n; ++i) {
            const float v = to_float(to_bf16(g[i]));
            acc[i] = r == 0 ? v : acc[i] + v;
        }
    }
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = to_float(to_bf16(acc[i]));
    return out;
}

// Two steps in `order`, each checked bitwise against bf16_rank_order_sum, and against the exact
// sum within the bf16 bound; the stats report the bf16 bytes.
void check_bf16_steps(GradientAverager& avg, const MemorySpace& mem, const std::vector<std::size_t>& order,
                      int want_buckets, const std::string& what)
{
    const std::size_t n = layer_offsets().back();
    BOOST_TEST_MESSAGE(rank_prefix() << what << " (" << avg.transport() << ")");
    for (int step = 0; step < 2; ++step) {
        const std::vector<float> got = sum_step(avg, mem, order, step);
        const std::vector<float> want = bf16_rank_order_sum(n, step);
        std::size_t differ = 0, first = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
        BOOST_CHECK_MESSAGE(all_ranks(differ == 0),
                            what << " step " << step << ": " << differ
                                 << " elements differ from bf16(rank-order sum of bf16), first " << first << ": "
                                 << got[first] << " vs " << want[first]);
        BOOST_CHECK_MESSAGE(same_on_all_ranks(got), what << ": ranks hold different sums");
        // Closeness to the exact (double) sum: each of the P terms is rounded to bf16 (relative
        // error <= 2^-8 each), then the float sum (P-1 roundings of 2^-24, negligible here) and
        // the final rounding (2^-8 of the result): |got - sum| <= 2^-8 (sum |g_r| + |sum|) + 1e-6.
        // Inputs in [-1, 1], so sum |g_r| <= P.
        const std::vector<float> exact = host_sum(n, step);
        double worst = 0.0;
        for (std::size_t i = 0; i < n; ++i)
            worst = std::max(worst,
                             std::fabs(static_cast<double>(got[i]) - exact[i]) /
                                 (0x1p-8 * (nranks() + std::fabs(static_cast<double>(exact[i]))) + 1e-6));
        BOOST_CHECK_MESSAGE(all_ranks(worst <= 1.0), what << ": off the exact sum by " << worst << " x the bf16 bound");
        const GradSyncStats& st = avg.last_step();
        BOOST_CHECK_EQUAL(st.buckets, nranks() > 1 ? want_buckets : 0);
        BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(bf16) : 0);
        BOOST_CHECK(st.wait_s <= st.mpi_s && st.mpi_s >= 0.0);
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_bf16_mpi_is_the_rank_order_sum_of_bf16)
{
    // The MPI transport on the caller's buffer: host and omp memory, direct and staged, buckets
    // of 100 floats (3 buckets: two in flight, the last blocking in finish()), one bucket in
    // flight, everything in finish(), and ranges in any order. Bucket boundaries never change a
    // bit of the result: every variant is held to the same expectation.
    const std::size_t n = layer_offsets().back();
    struct Case {
        std::vector<std::size_t> order;
        double bucket_mb;
        int buckets;
    };
    const std::vector<Case> cases{{{4, 3, 2, 1, 0}, kSmallBucketMb, 3},
                                  {{4, 3, 2, 1, 0}, 25.0, 1},
                                  {{4, 3, 2, 1, 0}, 0.0, 1},
                                  {{2, 0, 3, 4, 1}, kSmallBucketMb, 5}};
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const bool staging : {false, true})
            for (const Case& c : cases) {
                DeviceBuffer<float> grads(*mem, n);
                GradSyncOptions opt;
                opt.transport = GradTransport::mpi;
                opt.dtype = Precision::bf16;
                opt.bucket_mb = c.bucket_mb;
                opt.force_staging = staging;
                GradientAverager avg(comm(), *mem, grads.data(), n, opt);
                if (nranks() > 1) BOOST_CHECK_EQUAL(avg.staged(), staging || mem != &host_memory());
                check_bf16_steps(avg, *mem, c.order, c.buckets,
                                 std::string(mem->name()) + (staging ? " staged" : "") + " bf16 bucket_mb " +
                                     std::to_string(c.bucket_mb));
            }
}

BOOST_AUTO_TEST_CASE(gradient_bf16_owned_buffer_every_transport)
{
    // The same bits through shared memory (NodeSum's bf16 window) and MPI, on the averager's buffer.
    for (const GradTransport t : {GradTransport::shared, GradTransport::mpi}) {
        GradSyncOptions opt;
        opt.transport = t;
        opt.dtype = Precision::bf16;
        opt.bucket_mb = kSmallBucketMb;
        GradientAverager avg(comm(), host_memory(), layer_offsets().back(), opt);
        const bool shm = nranks() > 1 && t == GradTransport::shared;
        BOOST_CHECK_EQUAL(avg.shared_memory(), shm);
        if (nranks() > 1) BOOST_CHECK(avg.transport().find("bf16") != std::string::npos);
        check_bf16_steps(avg, host_memory(), {4, 3, 2, 1, 0}, shm ? 5 : 3,
                         std::string("owned bf16, transport ") + enum_name(t));
    }
}

BOOST_AUTO_TEST_CASE(gradient_bf16_large_buffer)
{
    // Several NodeSum chunks and 1 MB MPI buckets whose size is no multiple of P (a shorter last chunk), with
    // values over many binades: both transports give the expected bits.
    const std::size_t n = (std::size_t{1} << 20) + 12345;
    std::vector<float> mine = rank_grad(n, rank(), 0);
    for (std::size_t i = 0; i < n; ++i) mine[i] *= std::ldexp(1.0f, static_cast<int>(i % 41) - 20);
    std::vector<float> want(n);
    if (nranks() == 1) {
        want = mine;
    } else {
        std::vector<float> acc(n);
        for (int r = 0; r < nranks(); ++r) {
            const std::vector<float> g = rank_grad(n, r, 0);
            for (std::size_t i = 0; i < n; ++i) {
                const float v = to_float(to_bf16(g[i] * std::ldexp(1.0f, static_cast<int>(i % 41) - 20)));
                acc[i] = r == 0 ? v : acc[i] + v;
            }
        }
        for (std::size_t i = 0; i < n; ++i) want[i] = to_float(to_bf16(acc[i]));
    }
    for (const GradTransport t : {GradTransport::shared, GradTransport::mpi}) {
        GradSyncOptions opt;
        opt.transport = t;
        opt.dtype = Precision::bf16;
        opt.bucket_mb = 1.0;
        GradientAverager avg(comm(), host_memory(), n, opt);
        BOOST_CHECK_EQUAL(avg.data16() != nullptr, nranks() > 1);
        put_grad(avg, host_memory(), mine);
        for (std::size_t hi = n; hi > 0;) { // 100000-element "layers", last first
            const std::size_t lo = hi > 100000 ? hi - 100000 : 0;
            avg.bucket_ready(lo, hi - lo);
            hi = lo;
        }
        avg.finish();
        const std::vector<float> got = get_sum(avg, host_memory(), n);
        BOOST_CHECK_MESSAGE(all_ranks(std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0),
                            "large bf16 sum, transport " << enum_name(t));
        BOOST_TEST_MESSAGE(rank_prefix() << "4 MB bf16 " << avg.transport() << ": " << avg.last_step().buckets
                                         << " buckets, mpi " << avg.last_step().mpi_s * 1e3 << " ms, copies "
                                         << avg.last_step().copy_s * 1e3 << " ms");
    }
}
