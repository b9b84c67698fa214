// TraceFile: one Chrome trace-event JSON file for all ranks of a run (--trace FILE.json).
//
//   TraceFile trace(mpi, "run.json", {"ompml-train", first, last, num_params});  // collective
//   ... training records spans (core/trace.hpp) ...
//   trace.write();   // collective: at each checkpoint and at the end
//
// One process row per rank ("rank 1 (node07)"), one thread row per recording thread. Clocks:
// at construction every rank measures its steady clock against rank 0's (ping-pong, the round
// with the shortest round trip wins: error below half of it, microseconds on one node) and
// shifts its events onto rank 0's time axis, whose zero is the start of tracing.
//
// write() gathers what each rank recorded since the last write to rank 0, which keeps it and
// rewrites the whole file (a temporary file, then rename): a run stopped by a signal after its
// checkpoint keeps a complete, readable trace up to there. The file's "otherData" says what
// wrote it (program, version, git commit, build, host, CPU, device); the JSON is made with
// nlohmann::json one event per line, so rank 0 keeps each write's new lines and never re-renders
// what it has; an existing file at the path that is not an ompml trace is refused, as are
// directories and paths whose folder cannot be written, at construction (before training).
#pragma once

#include "core/provenance.hpp"
#include "parallel/comm.hpp"

#include <cstdint>
#include <set>
#include <string>

namespace ompml {

struct TraceInfo {
    std::string program;         // "ompml-train"
    std::int64_t first_step = 1; // the window, 1-based inclusive (--trace-steps A:B)
    std::int64_t last_step = 0;  // 0: no limit
    std::size_t params = 0;      // the model's parameter count (for readers of the file)
    Provenance provenance;       // what built and runs the program (core/provenance.hpp), in otherData
};

// "A:B" -> the window; "" -> everything. Throws Error naming the value otherwise.
void parse_trace_steps(const std::string& text, std::int64_t* first, std::int64_t* last);

class TraceFile {
public:
    // Collective: checks the path (rank 0; every rank throws the same CollectiveError), aligns
    // the clocks and starts recording for the window.
    TraceFile(const MpiSession& mpi, std::string path, TraceInfo info);
    ~TraceFile(); // stops recording (writes nothing: call write())
    TraceFile(const TraceFile&) = delete;
    TraceFile& operator=(const TraceFile&) = delete;

    void write(); // collective
    const std::string& path() const { return path_; }
    std::size_t events() const { return events_; } // written so far (rank 0)

private:
    std::string rank_events(); // this rank's new events as JSON lines, shifted onto rank 0's clock

    const MpiSession& mpi_;
    std::string path_;
    TraceInfo info_;
    std::int64_t offset_ns_ = 0;         // add to this rank's times: rank 0's clock
    std::set<std::uint64_t> open_async_; // async spans begun and not yet ended (this rank)
    std::vector<std::string> meta_;      // rank 0: each rank's metadata lines (latest)
    std::string body_;                   // rank 0: every event so far
    std::size_t events_ = 0;
};

} // namespace ompml
