// TraceFile (see trace_file.hpp): clock alignment, the ranks' events merged on rank 0, the file.
#include "parallel/trace_file.hpp"

#include "core/parse_int.hpp"
#include "core/trace.hpp"
#include "io/atomic_file.hpp"
#include "parallel/mpi_check.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace ompml {
namespace {

namespace fs = std::filesystem;

constexpr int kTag = 7391;
constexpr int kRounds = 8;
constexpr const char* kProducer = "{\"otherData\":{\"producer\":\"ompml\"";

std::string json_string(const std::string& s)
{
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// Nanoseconds to add to this rank's trace clock to read rank 0's (0 on rank 0).
std::int64_t clock_offset_ns(MPI_Comm comm)
{
    int rank = 0, size = 1;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &size));
    std::vector<std::int64_t> offsets(static_cast<std::size_t>(size), 0);
    for (int r = 1; r < size; ++r) {
        if (rank == 0) {
            std::int64_t best = std::numeric_limits<std::int64_t>::max();
            for (int i = 0; i < kRounds; ++i) {
                std::int64_t theirs = 0;
                const std::int64_t t0 = trace::now_ns();
                MPI_CHECK(MPI_Send(&t0, 1, MPI_INT64_T, r, kTag, comm));
                MPI_CHECK(MPI_Recv(&theirs, 1, MPI_INT64_T, r, kTag, comm, MPI_STATUS_IGNORE));
                const std::int64_t t1 = trace::now_ns();
                if (t1 - t0 < best) {
                    best = t1 - t0;
                    offsets[static_cast<std::size_t>(r)] = (t0 + t1) / 2 - theirs;
                }
            }
        } else if (rank == r) {
            for (int i = 0; i < kRounds; ++i) {
                std::int64_t t0 = 0;
                MPI_CHECK(MPI_Recv(&t0, 1, MPI_INT64_T, 0, kTag, comm, MPI_STATUS_IGNORE));
                const std::int64_t mine = trace::now_ns();
                MPI_CHECK(MPI_Send(&mine, 1, MPI_INT64_T, 0, kTag, comm));
            }
        }
    }
    std::int64_t mine = 0;
    MPI_CHECK(MPI_Scatter(offsets.data(), 1, MPI_INT64_T, &mine, 1, MPI_INT64_T, 0, comm));
    return mine;
}

// Throws Error when `path` must not be written: a directory, an existing file that is not an
// ompml trace, or a folder where no file can be created.
void check_trace_path(const std::string& path)
{
    const std::string what = "--trace " + path + ": ";
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (fs::is_directory(st)) throw Error(what + "is a directory; give a file name, e.g. " + path + "/trace.json");
    if (fs::exists(st)) {
        std::ifstream in(path, std::ios::binary);
        std::string head(std::char_traits<char>::length(kProducer), '\0');
        in.read(head.data(), static_cast<std::streamsize>(head.size()));
        if (!in || head != kProducer)
            throw Error(what + "exists and is not an ompml trace: refusing to overwrite it (choose another name)");
    }
    // A file we can create beside it, made as write() will make it (and removed at once).
    try {
        const atomic_file::TempFile probe(path);
    } catch (const Error& e) {
        throw Error("--trace " + std::string(e.what()));
    }
}

std::string us(std::int64_t ns)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1e3);
    return buf;
}

// The rank's process row (named "rank R (host)", labelled with its clock offset) and its
// thread rows, one JSON line each.
std::string metadata_json(int rank, const std::string& host, std::int64_t offset_ns)
{
    const std::string head = "{\"ph\":\"M\",\"pid\":" + std::to_string(rank) + ",";
    std::string out = head + "\"name\":\"process_name\",\"tid\":0,\"args\":{\"name\":" +
        json_string("rank " + std::to_string(rank) + " (" + host + ")") + "}},\n";
    // Perfetto shows process labels under the row's name.
    out += head + "\"name\":\"process_labels\",\"tid\":0,\"args\":{\"labels\":\"clock " + us(offset_ns) +
        " us from rank 0\"}},\n";
    out +=
        head + "\"name\":\"process_sort_index\",\"tid\":0,\"args\":{\"sort_index\":" + std::to_string(rank) + "}},\n";
    for (const trace::ThreadName& t : trace::thread_names())
        out += head + "\"name\":\"thread_name\",\"tid\":" + std::to_string(t.tid) +
            ",\"args\":{\"name\":" + json_string(t.name) + "}},\n";
    return out;
}

// One event as a JSON line, on rank 0's clock.
std::string event_json(const trace::Event& e, int rank, std::int64_t offset_ns)
{
    std::string args;
    const auto arg = [&](const char* k, const std::string& v) {
        args += (args.empty() ? "\"" : ",\"") + (k + ("\":" + v));
    };
    if (e.step > 0) arg("step", std::to_string(e.step));
    if (e.layer >= 0) arg("layer", std::to_string(e.layer));
    if (e.bytes >= 0) arg("bytes", std::to_string(e.bytes));
    if (e.ph == 'C') {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g", e.value);
        arg("value", buf);
    }
    std::string out = "{\"ph\":\"" + std::string(1, e.ph) + "\",\"name\":" + json_string(e.name);
    if (*e.cat) out += ",\"cat\":" + json_string(e.cat);
    if (e.ph == 'b' || e.ph == 'e') out += ",\"id\":\"" + std::to_string(e.id) + "\"";
    out +=
        ",\"pid\":" + std::to_string(rank) + ",\"tid\":" + std::to_string(e.tid) + ",\"ts\":" + us(e.t_ns + offset_ns);
    if (e.ph == 'X') out += ",\"dur\":" + us(e.dur_ns);
    return out + ",\"args\":{" + args + "}},\n";
}

} // namespace

void parse_trace_steps(const std::string& text, std::int64_t* first, std::int64_t* last)
{
    *first = 1;
    *last = 0;
    if (text.empty()) return;
    const std::size_t colon = text.find(':');
    const std::string bad = "--trace-steps: value '" + text + "' is not A:B with 1 <= A <= B (steps, 1-based)";
    if (colon == std::string::npos) throw Error(bad);
    if (!parse_int(std::string_view(text).substr(0, colon), *first, std::int64_t{1}).empty() ||
        !parse_int(std::string_view(text).substr(colon + 1), *last, std::int64_t{1}).empty())
        throw Error(bad);
    if (*last < *first) throw Error(bad);
}

TraceFile::TraceFile(const MpiSession& mpi, std::string path, TraceInfo info)
    : mpi_(mpi), path_(std::move(path)), info_(std::move(info))
{
    collective_try(mpi, [&] {
        if (mpi.root()) check_trace_path(path_);
    });
    offset_ns_ = clock_offset_ns(mpi.comm());
    trace::name_thread("train");
    const std::int64_t last = info_.last_step > 0 ? info_.last_step : std::numeric_limits<std::int64_t>::max();
    trace::enable(info_.first_step, last);
    if (mpi.root()) meta_.resize(static_cast<std::size_t>(mpi.size()));
}

TraceFile::~TraceFile()
{
    trace::disable();
    trace::set_device_sync({});
}

std::string TraceFile::rank_events()
{
    std::string out = metadata_json(mpi_.rank(), mpi_.processor(), offset_ns_);
    out += '\n'; // metadata, then events: rank 0 keeps only the latest metadata of each rank
    for (const trace::Event& e : trace::take_events()) {
        if (e.ph == 'b') open_async_.insert(e.id);
        if (e.ph == 'e' && open_async_.erase(e.id) == 0) continue; // begun before the window
        out += event_json(e, mpi_.rank(), offset_ns_);
    }
    return out;
}

void TraceFile::write()
{
    const std::vector<std::string> parts = gather_strings(mpi_.comm(), rank_events());
    if (!mpi_.root()) return;
    for (std::size_t r = 0; r < parts.size(); ++r) {
        const std::size_t cut = parts[r].find("\n\n");
        meta_[r] = parts[r].substr(0, cut + 1);
        const std::string events = parts[r].substr(cut + 2);
        body_ += events;
        for (const char c : events) events_ += c == '\n';
    }
    std::string text = kProducer;
    text += ",\"program\":" + json_string(info_.program) + ",\"ranks\":" + std::to_string(mpi_.size()) +
        ",\"steps\":\"" + std::to_string(info_.first_step) + ":" +
        (info_.last_step > 0 ? std::to_string(info_.last_step) : "") + "\",\"params\":" + std::to_string(info_.params) +
        ",\"clock\":\"steady_clock, ranks aligned to rank 0\"},\n" + "\"displayTimeUnit\":\"ms\",\n\"traceEvents\":[\n";
    for (const std::string& m : meta_) text += m;
    text += body_;
    text.resize(text.size() - 2); // every line ends ",\n"; JSON allows no comma after the last
    text += "\n]}\n";
    try {
        atomic_file::write_bytes(path_, text);
    } catch (const Error& e) {
        throw Error("--trace " + std::string(e.what()));
    }
}

} // namespace ompml
