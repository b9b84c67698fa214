// The MPI layer under mpirun (-np 2 and -np 4; the bf16 and split-tree cases also -np 3, the
// split-tree cases -np 8) and as a singleton: session and device binding, configuration
// agreement, collective errors, parameter broadcast, and the gradient sum (grad_sum.hpp: fp32, and
// bf16 on the wire; every transport) checked against a sum computed on the host from every rank's
// (reproducible) data: bit for bit against the split-tree order over ranks where the transport
// promises it.
// Gradients are allocated as the model allocates them, from the plan's gradient memory; with omp
// memory the offload-check build exercises real device copies (and the staged transport).
// Checks that depend on other ranks' data are reduced over all ranks before they are judged,
// so a wrong value fails every rank instead of leaving some waiting in the next collective.
#define BOOST_TEST_MODULE parallel
#include "core/split_tree.hpp"
#include "parallel/comm.hpp"
#include "parallel/grad_sum.hpp"
#include "parallel/mpi_comm.hpp"
#include "parallel/node_memory.hpp"
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
const double kSmallBucketMb = 100.0 * sizeof(float) / 1048576.0; // 100 floats

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

// What a fixed-order sum must give, bit for bit (grad_sum.hpp): every rank's value as G holds it
// (bf16: rounded once), added in float in the split-tree order over rank index
// (core/split_tree.hpp), the sum rounded to G once. values(r): rank r's gradient. On 1 rank: the
// gradient itself, as G.
template <class G, class Values>
std::vector<float> split_tree_sum(std::size_t n, Values&& values)
{
    std::vector<std::vector<float>> g;
    for (int r = 0; r < nranks(); ++r) g.push_back(values(r));
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const float sum = split_tree_reduce(
            0, g.size(), [&](std::size_t r) { return to_float(from_float<G>(g[r][i])); },
            [](float a, float b) { return a + b; });
        out[i] = to_float(from_float<G>(sum));
    }
    return out;
}

// The bf16 sum of rank_grad's values (every bf16 transport is in fixed order).
std::vector<float> bf16_split_tree_sum(std::size_t n, int step)
{
    return split_tree_sum<bf16>(n, [&](int r) { return rank_grad(n, r, step); });
}

GradSumOptions options(GradTransport t, double bucket_mb = kSmallBucketMb, bool force_staging = false,
                       MpiFp32Sum fp32 = MpiFp32Sum::automatic)
{
    GradSumOptions opt;
    opt.transport = t;
    opt.bucket_mb = bucket_mb;
    opt.force_staging = force_staging;
    opt.mpi_fp32 = fp32;
    return opt;
}

// Both fp32 MPI sums, each named as describe() starts.
const std::pair<MpiFp32Sum, const char*> kFp32Sums[] = {{MpiFp32Sum::allreduce, "MPI_Iallreduce"},
                                                        {MpiFp32Sum::exchange, "MPI exchange, fixed order"}};

// A gradient as the model holds it (allocated from the plan's gradient memory, for its whole
// life) and the transport over it. Members are destroyed in reverse: the transport, the
// gradient, then the plan whose memory the gradient lives in.
template <class G>
struct Summed {
    GradSumPlan plan;
    DeviceBuffer<G> grad;
    std::unique_ptr<GradientSum<G>> sum;
    Summed(const MemorySpace& mem, std::size_t n, GradSumOptions opt)
        : plan(comm(), mem, std::move(opt)), grad(plan.gradient_memory(), n), sum(plan.make(grad.data(), n))
    {
    }
    // This rank's gradient as backward writes it (bf16: each value rounded once).
    void put(const std::vector<float>& g)
    {
        std::vector<G> h(g.size());
        for (std::size_t i = 0; i < g.size(); ++i) h[i] = from_float<G>(g[i]);
        grad.upload(h);
    }
    // The gradient where the optimizer reads it, widened to float.
    std::vector<float> get() const
    {
        const std::vector<G> h = grad.to_vector();
        std::vector<float> out(h.size());
        for (std::size_t i = 0; i < h.size(); ++i) out[i] = to_float(h[i]);
        return out;
    }
};

// One step: this rank writes its gradient for `step`, marks the layers in `order`, finishes;
// returns the sums on the host.
template <class G>
std::vector<float> sum_step(Summed<G>& s, const std::vector<std::size_t>& order, int step)
{
    const std::vector<std::size_t> offsets = layer_offsets();
    s.put(rank_grad(offsets.back(), rank(), step));
    for (const std::size_t layer : order) s.sum->ready(offsets[layer], kLayers[layer]);
    s.sum->finish();
    return s.get();
}

// Two steps (the transport is reused step after step), each checked against the host's sum; the
// ranks hold bitwise the same sums; the stats count the buckets and the fp32 bytes.
void check_steps(Summed<float>& s, const std::vector<std::size_t>& order, int want_buckets, const std::string& what)
{
    const std::size_t n = layer_offsets().back();
    BOOST_TEST_MESSAGE(rank_prefix() << what << " (" << s.sum->describe() << ")");
    for (int step = 0; step < 2; ++step) {
        const std::vector<float> got = sum_step(s, order, step);
        // Each element sums P values in [-1, 1]: float rounding stays well below 1e-6 absolute.
        test::check_close(got, host_sum(n, step), 1e-6, 1e-5, what + " step " + std::to_string(step));
        BOOST_CHECK_MESSAGE(same_on_all_ranks(got), what << ": ranks hold different sums");
        const GradSyncStats& st = s.sum->last_step();
        BOOST_CHECK_EQUAL(st.buckets, nranks() > 1 ? want_buckets : 0);
        BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(float) : 0);
        BOOST_CHECK(st.wait_s <= st.mpi_s && st.mpi_s >= 0.0);
    }
    BOOST_CHECK_EQUAL(s.sum->total().steps, 2);
}

// The MPI transport (GradTransport::mpi), with each fp32 sum (MPI_Iallreduce and the exchange):
// on the gradient itself where MPI may read host memory, through a host mirror where the gradient
// is device memory or staging is forced.
void check_mpi(const MemorySpace& mem, bool force_staging, double bucket_mb, int want_buckets,
               const std::vector<std::size_t>& order)
{
    for (const auto& [fp32, name] : kFp32Sums) {
        Summed<float> s(mem, layer_offsets().back(), options(GradTransport::mpi, bucket_mb, force_staging, fp32));
        BOOST_CHECK(&s.plan.gradient_memory() == &mem);
        BOOST_CHECK_EQUAL(s.sum->kind(), nranks() > 1 ? "mpi" : "none");
        const std::string d = s.sum->describe();
        if (nranks() > 1) {
            BOOST_CHECK_MESSAGE(d.rfind(name, 0) == 0, d);
            BOOST_CHECK_EQUAL(d.find("staged through") != std::string::npos, force_staging || &mem != &host_memory());
        }
        check_steps(s, order, want_buckets,
                    std::string(mem.name()) + (force_staging ? " staged " : " ") + name + " bucket_mb " +
                        std::to_string(bucket_mb));
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_buckets_in_reverse_layer_order)
{
    const std::vector<std::size_t> reverse{4, 3, 2, 1, 0};
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const bool staging : {false, true}) {
            // Reverse order with 100-float buckets: [1 + 333] goes, [5 + 1000] goes, [37] in finish().
            check_mpi(*mem, staging, kSmallBucketMb, 3, reverse);
            check_mpi(*mem, staging, 25.0, 1, reverse); // everything fits one bucket
            check_mpi(*mem, staging, 0.0, 1, reverse);  // no overlap: one bucket in finish()
        }
}

BOOST_AUTO_TEST_CASE(gradient_ranges_in_any_order)
{
    // A range not adjacent to the pending one closes it. 100-float buckets: 2 | 0 | 3 (full) |
    // 4 | 1 (full); one bucket in finish(): 2 | 0 | 3+4 (adjacent above) | 1.
    check_mpi(omp_memory(), false, kSmallBucketMb, 5, {2, 0, 3, 4, 1});
    check_mpi(omp_memory(), true, 0.0, 4, {2, 0, 3, 4, 1});
}

BOOST_AUTO_TEST_CASE(gradient_large_buffer_whole)
{
    const std::size_t n = (std::size_t{3} << 20) + 17; // 12 MB: several 1 MB buckets
    Summed<float> s(omp_memory(), n, options(GradTransport::mpi, 1.0));
    s.put(rank_grad(n, rank(), 0));
    for (std::size_t hi = n; hi > 0;) { // 1000-element "layers", last first
        const std::size_t lo = hi > 1000 ? hi - 1000 : 0;
        s.sum->ready(lo, hi - lo);
        hi = lo;
    }
    s.sum->finish();
    test::check_close(s.get(), host_sum(n, 0), 1e-6, 1e-5, "12 MB gradient in 1 MB buckets");
    if (nranks() > 1) BOOST_CHECK_EQUAL(s.sum->last_step().buckets, 12); // 11 x 263 layers, then the rest
    const GradSyncStats& st = s.sum->last_step();
    BOOST_TEST_MESSAGE(rank_prefix() << "12 MB: mpi " << st.mpi_s * 1e3 << " ms, exposed wait " << st.wait_s * 1e3
                                     << " ms, copies " << st.copy_s * 1e3 << " ms, " << s.sum->describe());
}

namespace {

// A range past the end, a range overlapping an earlier one, and a step with elements left
// unmarked are errors (the last after the wait: a whole step works next), on every transport.
template <class G>
void check_misuse(Summed<G>& s, const std::string& what)
{
    const std::size_t n = 100;
    BOOST_TEST_CONTEXT(what << " (" << s.sum->describe() << ")")
    {
        BOOST_CHECK_THROW(s.sum->ready(90, 11), Error); // past the end
        s.sum->ready(50, 50);
        BOOST_CHECK_THROW(s.sum->ready(40, 20), Error); // overlaps [50, 100)
        BOOST_CHECK_EXCEPTION(s.sum->finish(), Error, [](const Error& e) {
            return std::strstr(e.what(), "only 50 of 100 gradient elements were marked") != nullptr;
        }); // [0, 50) never marked: waits, then throws
        BOOST_CHECK_EQUAL(s.sum->last_step().steps, 1);
        // The failed step left nothing behind: a whole step works again.
        s.put(rank_grad(n, rank(), 1));
        s.sum->ready(0, n);
        s.sum->finish();
        if constexpr (std::is_same_v<G, bf16>)
            BOOST_CHECK(all_ranks(s.get() == bf16_split_tree_sum(n, 1)));
        else
            test::check_close(s.get(), host_sum(n, 1), 1e-6, 1e-5, what + ": step after a misuse");
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_misuse_is_an_error)
{
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const GradTransport t : {GradTransport::automatic, GradTransport::mpi})
            for (const bool staging : {false, true}) {
                const std::string what = std::string(mem->name()) + " " + enum_name(t) + (staging ? " staged" : "");
                for (const auto& [fp32, name] : kFp32Sums) {
                    Summed<float> f(*mem, 100, options(t, 4.0, staging, fp32));
                    check_misuse(f, what + " " + name);
                }
                Summed<bf16> h(*mem, 100, options(t, 4.0, staging));
                check_misuse(h, what + " bf16");
            }
    // The blocking allreduce checks the same marks.
    GradSumPlan plan(comm(), omp_memory(), options(GradTransport::mpi));
    DeviceBuffer<float> grad(plan.gradient_memory(), 100);
    const std::unique_ptr<GradientSum<float>> blocking = plan.make_blocking_allreduce(grad.data(), 100);
    BOOST_CHECK_THROW(blocking->ready(90, 11), Error);
    blocking->ready(50, 50);
    BOOST_CHECK_THROW(blocking->ready(40, 20), Error);
    BOOST_CHECK_THROW(blocking->finish(), Error);
}

// --- every transport the plan chooses: shared memory on one node, MPI otherwise ----------------

BOOST_AUTO_TEST_CASE(gradient_every_transport)
{
    const std::vector<std::size_t> reverse{4, 3, 2, 1, 0};
    const std::size_t n = layer_offsets().back();
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const GradTransport t : {GradTransport::automatic, GradTransport::mpi, GradTransport::shared}) {
            const bool host = mem == &host_memory();
            if (t == GradTransport::shared && !host && nranks() > 1) continue; // an error: gradient_shm_misuse
            Summed<float> s(*mem, n, options(t));
            // mpirun starts every test rank on this one machine, so shm is possible with host memory.
            const bool shm = nranks() > 1 && host && t != GradTransport::mpi;
            BOOST_CHECK_EQUAL(s.sum->kind(), nranks() == 1 ? "none" : shm ? "shm" : "mpi");
            BOOST_CHECK_EQUAL(&s.plan.gradient_memory() != mem, shm); // the model allocates in the window
            if (shm) {                                                // which comes zeroed
                const std::vector<float> zeros = s.grad.to_vector();
                BOOST_CHECK(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0.0f; }));
            }
            // shm sums every marked range (5 layers); MPI sends the 3 buckets of 100 floats.
            check_steps(s, reverse, shm ? 5 : 3, std::string(mem->name()) + ", transport " + enum_name(t));
        }
}

// --- the fixed order: the split tree over ranks, bit for bit -----------------------------------

namespace {

// Rank r's gradient for the order tests. rank_grad's values are multiples of 2^-23 in [-1, 1],
// whose sums over a few ranks are exact in any order. So the even elements are scaled by a
// factor of the rank's own (not a power of two) and a power of two from 2^-20 to 2^20 per element:
// their float sums over 3 or more ranks depend on the order of the additions. And the odd
// elements are +-1 or +-1.5 times 2^0, 2^-10 or 2^-30 (picked by the value): exact in bf16, and
// where two large ones cancel, whether a small one was added to a large one first decides the
// result far above bf16's rounding, so bf16 sums depend on the order too.
std::vector<float> order_grad(std::size_t n, int r, int step)
{
    std::vector<float> g = rank_grad(n, r, step);
    for (std::size_t i = 0; i < n; ++i) {
        const float x = g[i];
        if (i % 2 == 0) {
            g[i] = x * (1.0f + 0.37f * static_cast<float>(r)) * std::ldexp(1.0f, static_cast<int>(i % 41) - 20);
        } else {
            const int q = std::min(5, static_cast<int>(std::fabs(x) * 6.0f));
            const float mag = (q % 2 == 1 ? 1.5f : 1.0f) *
                std::ldexp(1.0f,
                           (q / 2) == 0       ? 0
                               : (q / 2) == 1 ? -10
                                              : -30);
            g[i] = x < 0.0f ? -mag : mag;
        }
    }
    return g;
}

// One step of a fixed-order transport over order_grad's values, its ranges marked in two pieces
// (the second half first): the sum, widened to float, on this rank.
template <class G>
std::vector<float> order_step(Summed<G>& s, std::size_t n, int step)
{
    s.put(order_grad(n, rank(), step));
    s.sum->ready(n / 3, n - n / 3);
    s.sum->ready(0, n / 3);
    s.sum->finish();
    return s.get();
}

// Every rank's sum is the host's split-tree sum, bit for bit; the count of differing elements and
// the first one are reported.
bool check_split_tree(const std::vector<float>& got, const std::vector<float>& want, const std::string& what)
{
    std::size_t differ = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
    const bool ok = all_ranks(differ == 0);
    BOOST_CHECK_MESSAGE(ok,
                        rank_prefix() << what << ": " << differ << " of " << got.size()
                                      << " elements differ from the split-tree sum over ranks, first " << first << ": "
                                      << (differ > 0 ? got[first] : 0.0f) << " vs "
                                      << (differ > 0 ? want[first] : 0.0f));
    return ok;
}

template <class G>
void check_split_tree_order(const std::string& dtype)
{
    const std::size_t n = 100003; // several NodeSum chunks, no multiple of P
    struct Case {
        const MemorySpace* mem;
        GradSumOptions opt;
        const char* what;
    };
    GradSumOptions fixed = options(GradTransport::automatic, kSmallBucketMb);
    fixed.fixed_order = true;
    GradSumOptions fixed_mpi = options(GradTransport::mpi, 1.0);
    fixed_mpi.fixed_order = true;
    const std::vector<Case> cases{
        {&host_memory(), options(GradTransport::shared), "shm"},
        {&host_memory(), options(GradTransport::mpi, kSmallBucketMb, false, MpiFp32Sum::exchange),
         "mpi exchange, 100-float buckets"},
        {&host_memory(), options(GradTransport::mpi, 0.0, false, MpiFp32Sum::exchange), "mpi exchange, one bucket"},
        {&omp_memory(), options(GradTransport::mpi, 1.0, true, MpiFp32Sum::exchange), "mpi exchange, staged"},
        {&host_memory(), fixed, "auto, fixed order"},
        {&omp_memory(), fixed_mpi, "mpi, fixed order"},
    };
    for (int step = 0; step < 2; ++step) {
        const std::vector<float> want = split_tree_sum<G>(n, [&](int r) { return order_grad(n, r, step); });
        for (const Case& c : cases) {
            Summed<G> s(*c.mem, n, c.opt);
            const std::string what = dtype + " " + c.what + " (" + s.sum->describe() + ") step " + std::to_string(step);
            check_split_tree(order_step(s, n, step), want, what);
        }
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_split_tree_order)
{
    // Every fixed-order transport (shm, the MPI exchange direct and staged, what fixed_order picks)
    // sums the ranks in the split tree over rank index: bit for bit the host's split-tree sum, fp32
    // and bf16. On 2 ranks any order gives these bits; on 3 the tree is (g0 + g1) + g2, on 4
    // (g0 + g1) + (g2 + g3), on 8 the balanced tree: the ctest runs on 3, 4 and 8 ranks fail for
    // any other order (order_grad's sums depend on it).
    check_split_tree_order<float>("fp32");
    check_split_tree_order<bf16>("bf16");
}

BOOST_AUTO_TEST_CASE(gradient_split_tree_order_is_not_rank_order)
{
    // The inputs tell the orders apart, so gradient_split_tree_order would catch another order: on
    // 4 ranks or more the running sum in rank order differs from the split tree, and on 3 or more
    // a right-associated sum does, in many elements, fp32 and bf16. (On 3 ranks the split tree IS
    // the rank order; on 2 every order gives the same bits.)
    if (nranks() < 3) return;
    const std::size_t n = 100003;
    std::vector<std::vector<float>> g;
    for (int r = 0; r < nranks(); ++r) g.push_back(order_grad(n, r, 0));
    const auto count = [&](auto as) { // elements where the orders differ, with the inputs and the sum as `as` rounds
        std::size_t vs_rank_order = 0, vs_right = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto v = [&](std::size_t r) { return as(g[r][i]); };
            const float tree = as(split_tree_reduce(0, g.size(), v, [](float a, float b) { return a + b; }));
            float left = v(0), right = v(g.size() - 1);
            for (std::size_t r = 1; r < g.size(); ++r) left += v(r);
            for (std::size_t r = g.size() - 1; r-- > 0;) right = v(r) + right;
            vs_rank_order += tree != as(left);
            vs_right += tree != as(right);
        }
        return std::pair{vs_rank_order, vs_right};
    };
    const auto [f_seq, f_right] = count([](float x) { return x; });
    const auto [h_seq, h_right] = count([](float x) { return to_float(to_bf16(x)); });
    BOOST_TEST_MESSAGE(rank_prefix() << nranks() << " ranks, elements of " << n
                                     << " where the split tree differs from: rank order fp32 " << f_seq << ", bf16 "
                                     << h_seq << "; right-associated fp32 " << f_right << ", bf16 " << h_right);
    if (nranks() >= 4) {
        BOOST_CHECK_GT(f_seq, n / 20);
        BOOST_CHECK_GT(h_seq, 100u);
    }
    BOOST_CHECK_GT(f_right, n / 20);
    BOOST_CHECK_GT(h_right, 100u);
}

BOOST_AUTO_TEST_CASE(gradient_fp32_exchange_whatever_the_buckets)
{
    // The fp32 exchange's bits depend on nothing but the ranks' values: bitwise the same on every
    // rank and for every bucket layout, direct and staged, and equal to the host's split-tree sum.
    // 1000-element "layers", last first, so the layouts differ: 100-float buckets (one per layer,
    // 301), 0.25 MB (66 layers each), 25 MB and 0 (everything in one bucket in finish()). Two
    // steps: a reused transport gives the same.
    const std::size_t n = 300007;
    const std::vector<float> want = split_tree_sum<float>(n, [&](int r) { return order_grad(n, r, 0); });
    for (const double mb : {kSmallBucketMb, 0.25, 25.0, 0.0})
        for (const bool staging : {false, true}) {
            Summed<float> s(omp_memory(), n, options(GradTransport::mpi, mb, staging, MpiFp32Sum::exchange));
            for (int step = 0; step < 2; ++step) {
                s.put(order_grad(n, rank(), 0));
                for (std::size_t hi = n; hi > 0;) {
                    const std::size_t lo = hi > 1000 ? hi - 1000 : 0;
                    s.sum->ready(lo, hi - lo);
                    hi = lo;
                }
                s.sum->finish();
                const std::vector<float> got = s.get();
                const std::string what = "fp32 exchange bucket_mb " + std::to_string(mb) + (staging ? " staged" : "") +
                    " step " + std::to_string(step);
                check_split_tree(got, want, what);
                BOOST_CHECK_MESSAGE(same_on_all_ranks(got), what << ": ranks hold different sums");
                const GradSyncStats& st = s.sum->last_step();
                BOOST_CHECK_EQUAL(st.buckets, nranks() == 1 ? 0 : mb == kSmallBucketMb ? 301 : mb == 0.25 ? 5 : 1);
                BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(float) : 0);
            }
        }
}

BOOST_AUTO_TEST_CASE(gradient_split_tree_sum_of_scalars)
{
    // The few doubles of a fixed-order run (loss sums): split_tree_sum and MpiReduceComm with
    // fixed_order add the ranks in the split tree, bit for bit the host's, on every rank; the
    // values tell the orders apart (as order_grad's do) from 3 ranks on.
    const int n = 64;
    const auto values = [&](int r) {
        const std::vector<float> g = order_grad(static_cast<std::size_t>(n), r, 3);
        std::vector<double> v(g.begin(), g.end());
        for (double& x : v) x *= 1.0 + 1e-9 * r; // full 53-bit mantissas
        return v;
    };
    std::vector<std::vector<double>> all;
    for (int r = 0; r < nranks(); ++r) all.push_back(values(r));
    std::vector<double> want(n);
    std::size_t vs_rank_order = 0, vs_right = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const auto v = [&](std::size_t r) { return all[r][i]; };
        want[i] = split_tree_reduce(0, all.size(), v, [](double a, double b) { return a + b; });
        double left = v(0), right = v(all.size() - 1);
        for (std::size_t r = 1; r < all.size(); ++r) left += v(r);
        for (std::size_t r = all.size() - 1; r-- > 0;) right = v(r) + right;
        vs_rank_order += want[i] != left;
        vs_right += want[i] != right;
    }
    if (nranks() >= 3) BOOST_CHECK_GT(vs_right, 4u);
    if (nranks() >= 4) BOOST_CHECK_GT(vs_rank_order, 4u);
    std::vector<double> got = values(rank());
    split_tree_sum(comm(), got.data(), n);
    BOOST_CHECK(all_ranks(std::memcmp(got.data(), want.data(), n * sizeof(double)) == 0));
    MpiReduceComm fixed(comm(), true);
    got = values(rank());
    fixed.sum(got.data(), n);
    BOOST_CHECK(all_ranks(std::memcmp(got.data(), want.data(), n * sizeof(double)) == 0));
}

BOOST_AUTO_TEST_CASE(gradient_fixed_order_options)
{
    // fixed_order picks the fixed-order transport (shm where possible, else the fp32 exchange) and
    // refuses only what cannot be in that order: the MPI_Iallreduce sum and one blocking
    // MPI_Allreduce; on every rank, with the reason. bf16 is always in fixed order.
    const auto fixed = [](GradTransport t, MpiFp32Sum fp32) {
        GradSumOptions o = options(t, 4.0, false, fp32);
        o.fixed_order = true;
        return o;
    };
    BOOST_CHECK_EXCEPTION(GradSumPlan(comm(), host_memory(), fixed(GradTransport::mpi, MpiFp32Sum::allreduce)), Error,
                          [](const Error& e) {
                              return std::strstr(e.what(), "'allreduce' cannot give the fixed summation order") !=
                                  nullptr;
                          });
    {
        GradSumPlan plan(comm(), host_memory(), fixed(GradTransport::mpi, MpiFp32Sum::automatic));
        BOOST_CHECK(plan.fp32_fixed_order());
        DeviceBuffer<float> grad(plan.gradient_memory(), 10);
        if (nranks() > 1)
            BOOST_CHECK_EXCEPTION(plan.make_blocking_allreduce(grad.data(), 10), Error, [](const Error& e) {
                return std::strstr(e.what(), "blocking MPI_Allreduce cannot give the fixed summation order") != nullptr;
            });
        else
            BOOST_CHECK_NO_THROW(plan.make_blocking_allreduce(grad.data(), 10)); // 1 rank: no order to keep
    }
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const GradTransport t : {GradTransport::automatic, GradTransport::mpi}) {
            Summed<float> f(*mem, 10, fixed(t, MpiFp32Sum::automatic));
            Summed<float> x(*mem, 10, fixed(t, MpiFp32Sum::exchange));
            BOOST_CHECK(f.plan.fp32_fixed_order() && x.plan.fp32_fixed_order());
            if (nranks() == 1) continue;
            const bool shm = t == GradTransport::automatic && mem == &host_memory();
            for (const auto* s : {&f, &x})
                BOOST_CHECK_MESSAGE(s->sum->describe().rfind(shm ? "shared memory" : "MPI exchange, fixed order", 0) ==
                                        0,
                                    s->sum->describe());
        }
    // Without fixed_order, auto is the library default; an explicit allreduce is MPI's order.
    GradSumPlan mpi(comm(), host_memory(), options(GradTransport::mpi, 4.0, false, MpiFp32Sum::allreduce));
    BOOST_CHECK_EQUAL(mpi.fp32_fixed_order(), nranks() == 1);
    GradSumPlan shm(comm(), host_memory(), options(GradTransport::shared, 4.0, false, MpiFp32Sum::allreduce));
    BOOST_CHECK(shm.fp32_fixed_order()); // shm ignores the MPI choice
}

BOOST_AUTO_TEST_CASE(gradient_shm_memory_is_shared)
{
    // The shm plan's gradient memory is one window: what rank q stores into its own gradient,
    // every rank loads through the peer addresses, and a store through a peer address lands in
    // that rank's gradient. This is what lets backward write straight into the sum's memory.
    if (nranks() == 1) {
        Summed<float> s(host_memory(), 10, options(GradTransport::shared));
        BOOST_CHECK(&s.plan.gradient_memory() == &host_memory()); // 1 rank: nothing to share
        return;
    }
    const std::size_t n = 10007;
    GradSumPlan plan(comm(), host_memory(), options(GradTransport::shared));
    const auto* node = dynamic_cast<const NodeMemory*>(&plan.gradient_memory());
    BOOST_REQUIRE(node != nullptr);
    DeviceBuffer<float> grad(*node, n);
    const std::vector<void*> peers = node->peers(grad.data(), n * sizeof(float));
    BOOST_REQUIRE_EQUAL(peers.size(), static_cast<std::size_t>(nranks()));
    BOOST_CHECK(peers[static_cast<std::size_t>(rank())] == grad.data());
    BOOST_CHECK_EQUAL(reinterpret_cast<std::uintptr_t>(grad.data()) % 4096, 0u); // page-aligned
    for (std::size_t i = 0; i < n; ++i) grad.data()[i] = static_cast<float>(rank() * 100000 + static_cast<int>(i));
    MPI_Barrier(comm());
    bool ok = true;
    for (int q = 0; q < nranks(); ++q) {
        const float* theirs = static_cast<const float*>(peers[static_cast<std::size_t>(q)]);
        for (std::size_t i = 0; ok && i < n; ++i)
            ok = theirs[i] == static_cast<float>(q * 100000 + static_cast<int>(i));
    }
    BOOST_CHECK_MESSAGE(all_ranks(ok), "a rank read another rank's gradient wrong through the window");
    MPI_Barrier(comm());                                           // everyone has read before rank 0 writes
    if (rank() == 0) static_cast<float*>(peers[1])[n - 1] = -1.0f; // rank 0 stores into rank 1's gradient
    MPI_Barrier(comm());
    BOOST_CHECK(all_ranks(rank() != 1 || grad.data()[n - 1] == -1.0f));
    // Addresses the window does not hold are errors.
    std::vector<float> elsewhere(4);
    BOOST_CHECK_THROW(node->peers(elsewhere.data(), 4 * sizeof(float)), Error);
    BOOST_CHECK_THROW(node->peers(grad.data() + 10, n * sizeof(float) + 8192), Error); // past the allocation
}

BOOST_AUTO_TEST_CASE(gradient_shm_misuse_is_an_error)
{
    if (nranks() == 1) return; // 1 rank: no shared memory, nothing to misuse
    // A gradient not allocated from the plan's memory: every rank throws the same error.
    {
        GradSumPlan plan(comm(), host_memory(), options(GradTransport::shared));
        std::vector<float> buf(10);
        BOOST_CHECK_EXCEPTION(plan.make(buf.data(), buf.size()), Error, [](const Error& e) {
            return std::strstr(e.what(), "not allocated from the node-shared memory space") != nullptr;
        });
    }
    if (&omp_memory() != &host_memory()) // offload-check: the gradient is device memory
        BOOST_CHECK_EXCEPTION(
            GradSumPlan(comm(), omp_memory(), options(GradTransport::shared)), Error, [](const Error& e) {
                return std::strstr(e.what(), "shm is not possible here: the gradient is in") != nullptr;
            });

    // Ranks marking different ranges: every rank throws, none waits forever.
    const std::size_t n = 1000;
    auto mismatch = [&](const std::vector<std::pair<std::size_t, std::size_t>>& root_ranges,
                        const std::vector<std::pair<std::size_t, std::size_t>>& other_ranges) {
        Summed<float> s(host_memory(), n, options(GradTransport::shared));
        for (const auto& [off, cnt] : rank() == 0 ? root_ranges : other_ranges) s.sum->ready(off, cnt);
        BOOST_CHECK_EXCEPTION(s.sum->finish(), Error, [](const Error& e) {
            return std::strstr(e.what(), "ranks marked different gradient ranges") != nullptr;
        });
    };
    mismatch({{0, n}}, {{500, 500}, {0, 500}});               // fewer ranges on rank 0
    mismatch({{500, 500}, {0, 500}}, {{0, n}});               // more ranges on rank 0
    mismatch({{400, 600}, {0, 400}}, {{500, 500}, {0, 500}}); // as many ranges, other sizes
}

BOOST_AUTO_TEST_CASE(gradient_describe_and_kind)
{
    // The run's log and ompml-scale's CSV column name the transport the plan chose.
    const std::string P = std::to_string(nranks());
    const std::string bf = ", bf16 exchanged, fp32 sums";
    const std::string shm = "shared memory (one node, " + P + " ranks)";
    const std::string xc = "MPI exchange, fixed order";
    struct Case {
        GradTransport t;
        bool staging;
        MpiFp32Sum fp32;
        std::string f, h, kind; // describe() of the fp32 and the bf16 transport, kind(), with several ranks
    };
    const std::vector<Case> cases{
        {GradTransport::shared, false, MpiFp32Sum::automatic, shm, shm + bf, "shm"},
        {GradTransport::automatic, false, MpiFp32Sum::allreduce, shm, shm + bf, "shm"},
        {GradTransport::mpi, false, MpiFp32Sum::allreduce, "MPI_Iallreduce, on host memory",
         xc + ", on host memory" + bf, "mpi"},
        {GradTransport::mpi, true, MpiFp32Sum::allreduce, "MPI_Iallreduce, staged through pageable host memory",
         xc + ", staged through pageable host memory" + bf, "mpi"},
        {GradTransport::mpi, false, MpiFp32Sum::exchange, xc + ", on host memory", xc + ", on host memory" + bf, "mpi"},
        {GradTransport::mpi, true, MpiFp32Sum::exchange, xc + ", staged through pageable host memory",
         xc + ", staged through pageable host memory" + bf, "mpi"},
    };
    for (const Case& c : cases) {
        Summed<float> f(host_memory(), 10, options(c.t, 4.0, c.staging, c.fp32));
        Summed<bf16> h(host_memory(), 10, options(c.t, 4.0, c.staging, c.fp32));
        BOOST_CHECK_EQUAL(f.sum->describe(), nranks() > 1 ? c.f : "none (1 rank)");
        BOOST_CHECK_EQUAL(h.sum->describe(), nranks() > 1 ? c.h : "none (1 rank)");
        BOOST_CHECK_EQUAL(f.sum->kind(), nranks() > 1 ? c.kind : "none");
        BOOST_CHECK_EQUAL(h.sum->kind(), nranks() > 1 ? c.kind : "none");
    }
    // A pin hook pins the page-aligned mirror once (whole pages) and unpins it at the end.
    std::vector<std::pair<void*, std::size_t>> pinned;
    std::vector<void*> unpinned;
    {
        GradSumOptions opt = options(GradTransport::mpi, 4.0, true);
        opt.pin_host = [&](void* p, std::size_t bytes) { pinned.emplace_back(p, bytes); };
        opt.unpin_host = [&](void* p) { unpinned.push_back(p); };
        Summed<bf16> h(host_memory(), 5000, opt);
        if (nranks() > 1) BOOST_CHECK_EQUAL(h.sum->describe(), xc + ", staged through pinned host memory" + bf);
    }
    if (nranks() > 1) {
        BOOST_REQUIRE_EQUAL(pinned.size(), 1u);
        BOOST_CHECK_EQUAL(reinterpret_cast<std::uintptr_t>(pinned[0].first) % 4096, 0u);
        BOOST_CHECK_EQUAL(pinned[0].second, 12288u); // 5000 bf16 in whole pages
        BOOST_CHECK(unpinned == std::vector<void*>{pinned[0].first});
    } else {
        BOOST_CHECK(pinned.empty() && unpinned.empty()); // nothing is staged on 1 rank
    }
    // omp memory: device memory in the offload-check build, which MPI does not read here.
    Summed<float> d(omp_memory(), 10, options(GradTransport::mpi, 4.0, false, MpiFp32Sum::allreduce));
    if (nranks() > 1)
        BOOST_CHECK_EQUAL(d.sum->describe(),
                          &omp_memory() == &host_memory() ? "MPI_Iallreduce, on host memory"
                                                          : "MPI_Iallreduce, staged through pageable host memory");
    GradSumPlan plan(comm(), host_memory(), options(GradTransport::mpi));
    DeviceBuffer<float> grad(plan.gradient_memory(), 10);
    const auto blocking = plan.make_blocking_allreduce(grad.data(), 10);
    BOOST_CHECK_EQUAL(blocking->describe(), "one blocking MPI_Allreduce after backward (--grad-sync allreduce)");
    BOOST_CHECK_EQUAL(blocking->kind(), nranks() > 1 ? "mpi" : "none");
}

BOOST_AUTO_TEST_CASE(gradient_blocking_allreduce_is_mpi_allreduce)
{
    // ompml-scale's comparison: one MPI_Allreduce of the whole gradient, bit for bit what
    // MPI_Allreduce gives on the host, whatever memory the gradient is in (staged through the host
    // for device memory; straight from the window where the plan chose shared memory).
    const std::size_t n = layer_offsets().back();
    for (const MemorySpace* mem : {&host_memory(), &omp_memory()})
        for (const GradTransport t : {GradTransport::mpi, GradTransport::automatic}) {
            GradSumPlan plan(comm(), *mem, options(t));
            DeviceBuffer<float> grad(plan.gradient_memory(), n);
            const auto sum = plan.make_blocking_allreduce(grad.data(), n);
            for (int step = 0; step < 2; ++step) {
                std::vector<float> want = rank_grad(n, rank(), step);
                grad.upload(want);
                for (const std::size_t layer : {4, 3, 2, 1, 0}) sum->ready(layer_offsets()[layer], kLayers[layer]);
                sum->finish();
                MPI_Allreduce(MPI_IN_PLACE, want.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm());
                const std::vector<float> got = grad.to_vector();
                BOOST_CHECK_MESSAGE(all_ranks(std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0),
                                    mem->name()
                                        << " " << enum_name(t) << " step " << step << ": differs from MPI_Allreduce");
                const GradSyncStats& st = sum->last_step();
                BOOST_CHECK_EQUAL(st.buckets, nranks() > 1 ? 1 : 0);
                BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(float) : 0);
                BOOST_CHECK_EQUAL(st.wait_s, st.mpi_s); // nothing overlaps a blocking call
            }
            BOOST_CHECK_EQUAL(sum->total().steps, 2);
        }
}

// --- compressed gradients: G = bf16, exchanged as bf16, summed in fp32 --------------------------

namespace {

// Two steps in `order`, each checked bitwise against bf16_split_tree_sum, and against the exact
// sum within the bf16 bound; the stats report the bf16 bytes.
void check_bf16_steps(Summed<bf16>& s, const std::vector<std::size_t>& order, int want_buckets, const std::string& what)
{
    const std::size_t n = layer_offsets().back();
    BOOST_TEST_MESSAGE(rank_prefix() << what << " (" << s.sum->describe() << ")");
    for (int step = 0; step < 2; ++step) {
        const std::vector<float> got = sum_step(s, order, step);
        const std::vector<float> want = bf16_split_tree_sum(n, step);
        std::size_t differ = 0, first = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
        BOOST_CHECK_MESSAGE(all_ranks(differ == 0),
                            what << " step " << step << ": " << differ
                                 << " elements differ from bf16(split-tree sum of bf16), first " << first << ": "
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
        const GradSyncStats& st = s.sum->last_step();
        BOOST_CHECK_EQUAL(st.buckets, nranks() > 1 ? want_buckets : 0);
        BOOST_CHECK_EQUAL(st.bytes, nranks() > 1 ? n * sizeof(bf16) : 0);
        BOOST_CHECK(st.wait_s <= st.mpi_s && st.mpi_s >= 0.0);
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_bf16_mpi_is_the_split_tree_sum_of_bf16)
{
    // The MPI transport: host and omp memory, direct and staged, buckets of 100 floats (3
    // buckets: two in flight, the last blocking in finish()), one bucket in flight, everything in
    // finish(), and ranges in any order. Bucket boundaries never change a bit of the result: every
    // variant is held to the same expectation.
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
                Summed<bf16> s(*mem, n, options(GradTransport::mpi, c.bucket_mb, staging));
                // bf16 is summed on the host: device memory is always staged.
                if (nranks() > 1)
                    BOOST_CHECK_EQUAL(s.sum->describe().find("staged through") != std::string::npos,
                                      staging || mem != &host_memory());
                check_bf16_steps(s, c.order, c.buckets,
                                 std::string(mem->name()) + (staging ? " staged" : "") + " bf16 bucket_mb " +
                                     std::to_string(c.bucket_mb));
            }
}

BOOST_AUTO_TEST_CASE(gradient_bf16_every_transport)
{
    // The same bits through shared memory (NodeSum<bf16> on the window) and MPI.
    for (const GradTransport t : {GradTransport::shared, GradTransport::mpi}) {
        Summed<bf16> s(host_memory(), layer_offsets().back(), options(t));
        const bool shm = nranks() > 1 && t == GradTransport::shared;
        BOOST_CHECK_EQUAL(s.sum->kind(), nranks() == 1 ? "none" : shm ? "shm" : "mpi");
        check_bf16_steps(s, {4, 3, 2, 1, 0}, shm ? 5 : 3, std::string("bf16, transport ") + enum_name(t));
    }
}

BOOST_AUTO_TEST_CASE(gradient_bf16_large_buffer)
{
    // Several NodeSum chunks and 1 MB MPI buckets whose size is no multiple of P (a shorter last
    // chunk), with values over many binades: both transports give the expected bits.
    const std::size_t n = (std::size_t{1} << 20) + 12345;
    const auto scaled = [](const std::vector<float>& g) {
        std::vector<float> out(g);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] *= std::ldexp(1.0f, static_cast<int>(i % 41) - 20);
        return out;
    };
    const std::vector<float> want = split_tree_sum<bf16>(n, [&](int r) { return scaled(rank_grad(n, r, 0)); });
    for (const GradTransport t : {GradTransport::shared, GradTransport::mpi}) {
        Summed<bf16> s(host_memory(), n, options(t, 1.0));
        s.put(scaled(rank_grad(n, rank(), 0)));
        for (std::size_t hi = n; hi > 0;) { // 100000-element "layers", last first
            const std::size_t lo = hi > 100000 ? hi - 100000 : 0;
            s.sum->ready(lo, hi - lo);
            hi = lo;
        }
        s.sum->finish();
        const std::vector<float> got = s.get();
        BOOST_CHECK_MESSAGE(all_ranks(std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0),
                            "large bf16 sum, transport " << enum_name(t));
        const GradSyncStats& st = s.sum->last_step();
        BOOST_TEST_MESSAGE(rank_prefix() << "2 MB bf16 " << s.sum->describe() << ": " << st.buckets << " buckets, mpi "
                                         << st.mpi_s * 1e3 << " ms, copies " << st.copy_s * 1e3 << " ms");
    }
}

// --- the hierarchical sum: nodes emulated on this machine (GradSumOptions::fake_node_ranks) ------

namespace {

// Transport hier on nodes of k consecutive ranks (the last node shorter where k does not divide P).
GradSumOptions hier(int k, double bucket_mb, bool fixed_order, GradTransport t = GradTransport::hier)
{
    GradSumOptions o = options(t, bucket_mb);
    o.fake_node_ranks = k;
    o.fixed_order = fixed_order;
    return o;
}

// Whether nodes of k ranks compose the split tree over all ranks (node_layout.hpp): equal nodes
// of a power-of-two count, so P % k == 0 and P / k ... the count per node k a power of two.
bool composes(int k) { return nranks() % k == 0 && is_pow2(static_cast<std::size_t>(k)); }

// One step, the gradient marked in 1000-element "layers", last first.
template <class G>
std::vector<float> layered_step(Summed<G>& s, const std::vector<float>& mine)
{
    s.put(mine);
    for (std::size_t hi = mine.size(); hi > 0;) {
        const std::size_t lo = hi > 1000 ? hi - 1000 : 0;
        s.sum->ready(lo, hi - lo);
        hi = lo;
    }
    s.sum->finish();
    return s.get();
}

template <class G>
void check_hier_split_tree(const std::string& dtype)
{
    // Nodes of 2 and 4 ranks where they compose (2 x 2 on 4 ranks; 4 x 2 and 2 x 4 on 8), every
    // bucket size: bitwise the split tree over all ranks, fp32 and bf16, two steps.
    const std::size_t n = 100003; // several chunks of the node sum, no multiple of P
    for (const int k : {2, 4}) {
        if (!composes(k) || nranks() < k) continue;
        for (const double mb : {kSmallBucketMb, 0.25, 0.0}) {
            Summed<G> s(host_memory(), n, hier(k, mb, true));
            BOOST_CHECK_EQUAL(s.sum->kind(), "hier");
            BOOST_CHECK_EQUAL(s.plan.chosen(), std::string("hier"));
            BOOST_CHECK(s.plan.fp32_fixed_order());
            for (int step = 0; step < 2; ++step) {
                const std::vector<float> want = split_tree_sum<G>(n, [&](int r) { return order_grad(n, r, step); });
                const std::string what = dtype + " hier, nodes of " + std::to_string(k) + ", bucket_mb " +
                    std::to_string(mb) + " (" + s.sum->describe() + ") step " + std::to_string(step);
                check_split_tree(order_step(s, n, step), want, what + ", two ranges");
                check_split_tree(layered_step(s, order_grad(n, rank(), step)), want, what + ", 1000-element layers");
                const GradSyncStats& st = s.sum->last_step();
                BOOST_CHECK(st.node_s >= 0 && st.share_s >= 0 && st.inter_s >= 0);
                BOOST_CHECK(st.node_s + st.inter_s + st.share_s <= st.mpi_s * (1 + 1e-9) + 1e-12);
                BOOST_CHECK_EQUAL(st.bytes, n * sizeof(G));
            }
        }
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(gradient_hier_is_the_split_tree)
{
    // The two-level sum (each node's ranks in their split tree, then the node sums between the
    // leaders by the exchange) is bit for bit the split tree over all ranks where the layout
    // composes: order_grad's sums tell the orders apart from 3 ranks on (gradient_split_tree_order_
    // is_not_rank_order), so another order would fail on 4 and 8 ranks.
    check_hier_split_tree<float>("fp32");
    check_hier_split_tree<bf16>("bf16");
}

BOOST_AUTO_TEST_CASE(gradient_hier_any_layout_sums)
{
    // Any layout, fixed order or not, fp32 between the leaders by MPI_Iallreduce or the exchange:
    // the sum over all ranks to float rounding, bitwise the same on every rank, two steps; nodes of
    // 1, 2 and 3 ranks (3 ranks as 2 + 1, 4 as 3 + 1: unequal nodes). bf16: one rounding of the
    // float sum (within the bf16 bound of the exact sum).
    const std::size_t n = layer_offsets().back();
    const std::vector<std::size_t> reverse{4, 3, 2, 1, 0};
    for (const int k : {1, 2, 3})
        for (const MpiFp32Sum fp32 : {MpiFp32Sum::allreduce, MpiFp32Sum::exchange}) {
            GradSumOptions o = hier(k, kSmallBucketMb, false);
            o.mpi_fp32 = fp32;
            Summed<float> f(host_memory(), n, o);
            BOOST_CHECK_EQUAL(f.sum->kind(), nranks() > 1 ? "hier" : "none");
            check_steps(f, reverse, 5, "hier fp32, nodes of " + std::to_string(k) + ", " + enum_name(fp32));
            Summed<bf16> h(host_memory(), n, o);
            if (composes(k))
                check_bf16_steps(h, reverse, 5, "hier bf16, nodes of " + std::to_string(k));
            else // another order than the split tree over all ranks: to the bound only
                for (int step = 0; step < 2; ++step) {
                    const std::vector<float> got = sum_step(h, reverse, step);
                    const std::vector<float> exact = host_sum(n, step);
                    bool ok = same_on_all_ranks(got);
                    for (std::size_t i = 0; i < n; ++i)
                        ok = ok &&
                            std::fabs(static_cast<double>(got[i]) - exact[i]) <=
                                0x1p-8 * (nranks() + std::fabs(static_cast<double>(exact[i]))) + 1e-6;
                    BOOST_CHECK_MESSAGE(all_ranks(ok), "hier bf16, nodes of " << k << " step " << step);
                }
        }
}

BOOST_AUTO_TEST_CASE(gradient_hier_plan)
{
    // auto takes hier where the ranks are on several nodes and some node holds several; with
    // fixed_order only where the layout composes, else the flat exchange, saying why (note());
    // an explicit hier that cannot keep the fixed order, or whose gradient is device memory, is
    // an error on every rank.
    if (nranks() == 1) return;
    for (const int k : {1, 2, 3}) {
        const bool several_nodes = nranks() > k, shared = k > 1;
        const std::string want = !several_nodes ? "shm" : shared ? "hier" : "mpi";
        Summed<float> a(host_memory(), 10, hier(k, 4.0, false, GradTransport::automatic));
        BOOST_CHECK_EQUAL(a.plan.chosen(), want);
        BOOST_CHECK_EQUAL(a.sum->kind(), want);
        BOOST_CHECK(a.plan.note().empty());
        Summed<float> f(host_memory(), 10, hier(k, 4.0, true, GradTransport::automatic));
        const bool keeps = !several_nodes || !shared || composes(k);
        BOOST_CHECK_EQUAL(f.sum->kind(), keeps ? want : "mpi");
        BOOST_CHECK(f.plan.fp32_fixed_order());
        if (!keeps) {
            BOOST_CHECK_MESSAGE(f.sum->describe().rfind("MPI exchange, fixed order", 0) == 0, f.sum->describe());
            BOOST_CHECK_MESSAGE(f.plan.note().find("auto: not hierarchical, ") == 0, f.plan.note());
        }
        if (want == "hier")
            BOOST_CHECK_MESSAGE(a.sum->describe().rfind("hierarchical: shared memory in each node (", 0) == 0,
                                a.sum->describe());
        if (!(several_nodes && shared && !composes(k))) continue;
        BOOST_CHECK_EXCEPTION(GradSumPlan(comm(), host_memory(), hier(k, 4.0, true)), Error, [](const Error& e) {
            return std::strstr(e.what(), "gradient transport hier is not possible here: ") != nullptr &&
                std::strstr(e.what(), "cannot give the fixed summation order") != nullptr;
        });
    }
    if (&omp_memory() != &host_memory()) // offload-check: the gradient is device memory
        BOOST_CHECK_EXCEPTION(GradSumPlan(comm(), omp_memory(), hier(2, 4.0, false)), Error, [](const Error& e) {
            return std::strstr(e.what(), "hier is not possible here: the gradient is in") != nullptr;
        });
}

BOOST_AUTO_TEST_CASE(gradient_hier_misuse_is_an_error)
{
    // The same misuse as every transport (a step left incomplete, then a whole step), and ranks of
    // a node marking different ranges: every rank throws, none waits forever.
    for (const int k : {1, 2}) {
        Summed<float> f(host_memory(), 100, hier(k, 4.0, false));
        check_misuse(f, "hier fp32, nodes of " + std::to_string(k));
        Summed<bf16> h(host_memory(), 100, hier(k, 4.0, false));
        check_misuse(h, "hier bf16, nodes of " + std::to_string(k));
    }
    if (nranks() == 1) return;
    const std::size_t n = 1000;
    auto mismatch = [&](const std::vector<std::pair<std::size_t, std::size_t>>& first_ranges,
                        const std::vector<std::pair<std::size_t, std::size_t>>& other_ranges) {
        // one node of every rank: the leaders' transport has nothing to differ in
        Summed<float> s(host_memory(), n, hier(nranks(), 4.0, false));
        for (const auto& [off, cnt] : rank() == 0 ? first_ranges : other_ranges) s.sum->ready(off, cnt);
        BOOST_CHECK_EXCEPTION(s.sum->finish(), Error, [](const Error& e) {
            return std::strstr(e.what(), "ranks of a node marked different gradient ranges") != nullptr;
        });
    };
    mismatch({{0, n}}, {{500, 500}, {0, 500}});               // fewer ranges on rank 0
    mismatch({{500, 500}, {0, 500}}, {{0, n}});               // more ranges on rank 0
    mismatch({{400, 600}, {0, 400}}, {{500, 500}, {0, 500}}); // as many ranges, other sizes
}
