// MpiSession, device binding, abort_all, agree, collective_ok and broadcast (see comm.hpp).
// Every MPI call goes through MPI_CHECK; MPI_COMM_WORLD returns error codes (set here), so the
// message that ends the job is ours, with file, line and MPI's own error text.
#include "parallel/comm.hpp"

#include "core/split_tree.hpp"
#include "parallel/mpi_check.hpp"

#include <omp.h>

#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h> // Open MPI extensions: MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

namespace ompml {
namespace {

// MPI_Initialized and MPI_Finalized are the two calls allowed before MPI_Init and after
// MPI_Finalize; they cannot fail in a way an error handler would see, so they go unchecked.
bool mpi_running()
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init != 0 && fin == 0;
}

int comm_rank(MPI_Comm comm)
{
    int r = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &r));
    return r;
}

int comm_size(MPI_Comm comm)
{
    int s = 1;
    MPI_CHECK(MPI_Comm_size(comm, &s));
    return s;
}

// MPI counts are int: move large buffers in pieces of at most 2^30 elements.
constexpr std::size_t kMaxCount = std::size_t{1} << 30;

// Broadcasts a string's length and bytes from root; other ranks' s is replaced.
void bcast_string(MPI_Comm comm, std::string& s, int root)
{
    unsigned long long len = s.size();
    MPI_CHECK(MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, root, comm));
    s.resize(len);
    if (len > 0) MPI_CHECK(MPI_Bcast(s.data(), static_cast<int>(len), MPI_CHAR, root, comm));
}

std::map<std::string, std::string> parse_canonical(const std::string& text)
{
    std::map<std::string, std::string> kv;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return kv;
}

// Rank 0's view of a mismatch: for each setting that differs, the first rank that disagrees
// with rank 0 and both values. Keys are listed in rank 0's order, then keys rank 0 lacks.
std::string describe_mismatch(const std::vector<std::string>& texts)
{
    const auto base = parse_canonical(texts[0]);
    std::vector<std::string> order; // rank 0's key order (map sorts; keep the caller's)
    {
        std::istringstream in(texts[0]);
        std::string line;
        while (std::getline(in, line)) order.push_back(line.substr(0, line.find('=')));
    }
    std::vector<std::string> diffs;
    std::map<std::string, bool> seen;
    auto note = [&](const std::string& key, std::size_t r, const std::string* v0, const std::string* vr) {
        if (seen[key]) return;
        seen[key] = true;
        diffs.push_back(key + ": rank 0 has " + (v0 ? "'" + *v0 + "'" : "no such setting") + ", rank " +
                        std::to_string(r) + " has " + (vr ? "'" + *vr + "'" : "no such setting"));
    };
    for (std::size_t r = 1; r < texts.size(); ++r) {
        const auto other = parse_canonical(texts[r]);
        for (const auto& key : order) {
            const auto it = other.find(key);
            const std::string* v0 = &base.at(key);
            if (it == other.end())
                note(key, r, v0, nullptr);
            else if (it->second != *v0)
                note(key, r, v0, &it->second);
        }
        for (const auto& [key, v] : other)
            if (base.find(key) == base.end()) note(key, r, nullptr, &v);
        if (texts[r] != texts[0] && diffs.empty())
            diffs.push_back("setting order differs on rank " + std::to_string(r));
    }
    std::string msg = "ranks disagree on the configuration: ";
    for (std::size_t i = 0; i < diffs.size(); ++i) msg += (i ? "; " : "") + diffs[i];
    return msg;
}

} // namespace

// --- reporting ------------------------------------------------------------------------------

std::string rank_prefix()
{
    if (!mpi_running()) return "";
    // Unchecked on purpose: mpi_fail() reports through here, so MPI_CHECK would recurse. A failure
    // leaves the defaults, "[rank 0/1] ", in a message that is on its way out anyway.
    int r = 0, s = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return "[rank " + std::to_string(r) + "/" + std::to_string(s) + "] ";
}

void abort_all(const std::string& msg, int code)
{
    std::fflush(stdout);
    std::fprintf(stderr, "%serror: %s\n", rank_prefix().c_str(), msg.c_str());
    std::fflush(stderr);
    if (mpi_running()) MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code); // MPI_Abort does not return; without MPI this ends the one process
}

int run_on_every_rank(const MpiSession& mpi, const char* program, const std::function<int()>& body)
{
    try {
        return body();
    } catch (const CollectiveError& e) {
        std::fflush(stdout);
        if (mpi.root()) std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    } catch (const std::exception& e) {
        if (mpi.size() > 1) abort_all(std::string(program) + ": " + e.what(), 1);
        std::fflush(stdout);
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
}

void mpi_fail(const char* file, int line, const char* expr, int code)
{
    char text[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0;
    MPI_Error_string(code, text, &len); // unchecked: this is the reporter; the default text stays
    abort_all(std::string(expr) + ": " + text + source_suffix(file, line), 1);
}

bool mpi_cuda_aware()
{
#if defined(OMPI_HAVE_MPI_EXT_CUDA) && OMPI_HAVE_MPI_EXT_CUDA
    // Asked at run time: the library loaded may differ from the headers compiled against.
    return MPIX_Query_cuda_support() == 1;
#else
    return false;
#endif
}

// --- session and devices --------------------------------------------------------------------

int choose_local_device(int local_rank, int device_count) { return device_count > 0 ? local_rank % device_count : -1; }

std::string DeviceBinding::describe() const
{
    // The device the backend uses: its own API's where it has one (cuda), the host for ref,
    // else OpenMP's default device.
    std::string where;
    int used = 0; // devices of that kind, to say when ranks share them
    if (!hook_api.empty()) {
        where = hook_device >= 0
            ? "on " + hook_api + " device " + std::to_string(hook_device) + " of " + std::to_string(hook_devices)
            : "without a " + hook_api + " device";
        used = hook_devices;
    } else if (backend == "ref") {
        where = "on the host";
    } else {
        where = omp_device >= 0
            ? "on OpenMP device " + std::to_string(omp_device) + " of " + std::to_string(omp_devices)
            : std::string("on the host (no OpenMP device: target regions run on host cores)");
        used = omp_devices;
    }
    std::string s = "local rank " + std::to_string(local_rank) + " of " + std::to_string(local_size) + ": ";
    s += (backend.empty() ? std::string("no backend named,") : backend + " backend") + " " + where;
    if (used > 0 && local_size > used) s += " (ranks share devices)";
    return s;
}

MpiSession::MpiSession(int* argc, char*** argv)
{
    int init = 0;
    MPI_Initialized(&init);
    if (init == 0) {
        // Open MPI's default non-blocking allreduce (libnbc) was 2-3x slower than the blocking
        // one on the gradient buckets; its ring algorithm closes most of the gap (measured in
        // docs/results/scaling.md). A user's own setting wins; other MPIs ignore the variable.
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
        // MPI_THREAD_MULTIPLE: a streaming Loader's reader thread makes collective MPI-IO reads
        // while this thread reduces gradients. A library that gives less (but at least
        // FUNNELED) still runs: such loaders read independently (io/loader.hpp).
        // MPI's default handler aborts on a failing MPI_Init_thread; where a library returns
        // the error instead, MPI_CHECK reports it (without MPI running, abort_all just exits).
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_));
        owns_ = true;
    } else {
        MPI_CHECK(MPI_Query_thread(&thread_level_));
    }
    // Errors come back as codes, so MPI_CHECK can say which call failed and where.
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    if (thread_level_ < MPI_THREAD_FUNNELED)
        abort_all("the MPI library gives thread level " + std::to_string(thread_level_) +
                  "; ompml needs at least MPI_THREAD_FUNNELED (OpenMP threads beside the MPI thread; "
                  "MPI_THREAD_MULTIPLE for collective streaming reads)");
    rank_ = comm_rank(MPI_COMM_WORLD);
    size_ = comm_size(MPI_COMM_WORLD);

    // Ranks that share memory are the ranks of one node: their order picks the devices.
    MPI_Comm node = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    local_rank_ = comm_rank(node);
    local_size_ = comm_size(node);
    MPI_CHECK(MPI_Comm_free(&node));

    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int len = 0;
    MPI_CHECK(MPI_Get_processor_name(name, &len));
    processor_.assign(name, static_cast<std::size_t>(len));
}

MpiSession::~MpiSession()
{
    int fin = 0;
    MPI_Finalized(&fin);
    // A destructor cannot throw or abort the job at its very end: say so, and let the exit
    // status stand.
    if (owns_ && fin == 0 && MPI_Finalize() != MPI_SUCCESS)
        std::fprintf(stderr, "%swarning: MPI_Finalize failed\n", rank_prefix().c_str());
}

DeviceBinding MpiSession::bind_device(std::string_view backend) const
{
    DeviceBinding b = bind_device(backend_device_hook(backend));
    b.backend = backend;
    return b;
}

DeviceBinding MpiSession::bind_device(const DeviceHook& hook) const
{
    DeviceBinding b;
    b.local_rank = local_rank_;
    b.local_size = local_size_;
    b.omp_devices = omp_device_count(); // 0 in builds without an offload target (see core)
    b.omp_device = choose_local_device(local_rank_, b.omp_devices);
    if (b.omp_device >= 0) omp_set_default_device(b.omp_device);
    b.hook_api = hook.api;
    b.hook_devices = hook.count;
    b.hook_device = choose_local_device(local_rank_, hook.count);
    if (b.hook_device >= 0 && hook.set) hook.set(b.hook_device);
    return b;
}

// --- agreement --------------------------------------------------------------------------------

std::uint64_t fnv1a64(std::string_view s)
{
    std::uint64_t h = 14695981039346656037ull;
    for (const unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

std::string canonical(const Config& cfg)
{
    std::string out;
    for (const auto& [key, value] : cfg) {
        require(key.find_first_of("=\n") == std::string::npos && !key.empty(),
                "configuration key '" + key + "' must be non-empty without '=' or newline");
        std::string v = value;
        for (std::size_t p = 0; (p = v.find('\n', p)) != std::string::npos; p += 2) v.replace(p, 1, "\\n");
        out += key + "=" + v + "\n";
    }
    return out;
}

void agree(MPI_Comm comm, const Config& cfg)
{
    const std::string text = canonical(cfg);
    const std::uint64_t h = fnv1a64(text);
    // One allreduce gives both extremes: max(h) and max(~h) = ~min(h).
    std::uint64_t ext[2] = {h, ~h};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ext, 2, MPI_UINT64_T, MPI_MAX, comm));
    if (ext[0] == ~ext[1]) return;

    // Mismatch (rare, so its cost does not matter): rank 0 gathers every rank's settings and
    // names the differences; every rank throws the same message.
    const std::vector<std::string> texts = gather_strings(comm, text);
    std::string msg;
    if (comm_rank(comm) == 0) msg = describe_mismatch(texts);
    bcast_string(comm, msg, 0);
    throw CollectiveError(msg, -1, 0);
}

// --- collective errors ----------------------------------------------------------------------

void collective_ok(MPI_Comm comm, bool ok, const std::string& err)
{
    const int rank = comm_rank(comm), size = comm_size(comm);
    int first = ok ? size : rank; // the lowest failing rank, or size when none failed
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm));
    if (first == size) return;

    int count = ok ? 0 : 1;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_INT, MPI_SUM, comm));
    std::string msg = rank == first ? (err.empty() ? std::string("failed (no message)") : err) : std::string();
    bcast_string(comm, msg, first);
    msg = "rank " + std::to_string(first) + ": " + msg;
    if (count > 1) msg += " (" + std::to_string(count) + " ranks failed; the lowest is shown)";
    throw CollectiveError(msg, first, count);
}

// --- data movement --------------------------------------------------------------------------

void broadcast(MPI_Comm comm, const MemorySpace& mem, float* dev, std::size_t n, int root)
{
    if (n == 0 || comm_size(comm) == 1) return;
    const bool is_root = comm_rank(comm) == root;
    // Staged through host memory: correct for every memory space and every MPI; this runs
    // once per run (initial parameters), so the extra copy does not matter.
    std::vector<float> host(n);
    if (is_root) mem.to_host(host.data(), dev, n * sizeof(float));
    for (std::size_t off = 0; off < n; off += kMaxCount) {
        const int count = static_cast<int>(std::min(kMaxCount, n - off));
        MPI_CHECK(MPI_Bcast(host.data() + off, count, MPI_FLOAT, root, comm));
    }
    if (!is_root) mem.to_device(dev, host.data(), n * sizeof(float));
}

void allreduce_sum(MPI_Comm comm, double* values, int n)
{
    if (n <= 0 || comm_size(comm) == 1) return;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, comm));
}

void split_tree_sum(MPI_Comm comm, double* values, int n)
{
    const int P = comm_size(comm);
    if (n <= 0 || P == 1) return;
    std::vector<double> all(static_cast<std::size_t>(P) * static_cast<std::size_t>(n)); // (P, n)
    MPI_CHECK(MPI_Allgather(values, n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, comm));
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        values[i] = split_tree_reduce(
            0, static_cast<std::size_t>(P), [&](std::size_t r) { return all[r * static_cast<std::size_t>(n) + i]; },
            [](double a, double b) { return a + b; });
}

bool any_rank(MPI_Comm comm, bool local)
{
    if (comm_size(comm) == 1) return local;
    int flag = local ? 1 : 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, comm));
    return flag != 0;
}

std::vector<std::string> gather_strings(MPI_Comm comm, const std::string& s)
{
    const int rank = comm_rank(comm), size = comm_size(comm);
    if (size == 1) return {s};
    // Report lines are short; this guards the int counts MPI takes (a rank alone cannot throw
    // here: the others would wait in the gather).
    if (s.size() > static_cast<std::size_t>(INT_MAX))
        abort_all("gather_strings: a string of " + std::to_string(s.size()) + " bytes exceeds an MPI count");
    const int len = static_cast<int>(s.size());
    std::vector<int> lens(rank == 0 ? size : 0), displs(rank == 0 ? size : 0);
    MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm));
    std::string all;
    if (rank == 0) {
        long long total = 0;
        for (int r = 0; r < size; ++r) {
            displs[r] = static_cast<int>(total);
            total += lens[r];
        }
        // Rank 0 learns the total only now; every rank reached the Gatherv, so abort, not throw.
        if (total > INT_MAX)
            abort_all("gather_strings: " + std::to_string(total) + " bytes in all exceed an MPI count");
        all.resize(static_cast<std::size_t>(total));
    }
    MPI_CHECK(MPI_Gatherv(s.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0, comm));
    std::vector<std::string> out;
    for (int r = 0; rank == 0 && r < size; ++r) out.push_back(all.substr(displs[r], lens[r]));
    return out;
}

} // namespace ompml
