// Tracing: what the host threads of a run do, as spans, async spans and counters, for a
// timeline in the Chrome trace-event format (Perfetto, chrome://tracing). This file records
// one process; parallel/trace_file.hpp aligns the ranks' clocks, merges them and writes the file.
//
//   trace::Span s("forward", trace::device, l);      // a phase: from here to the end of scope
//   trace::counter("samples/s", rate);                // one value at this moment
//   trace::async_begin("bucket", id, bytes); ... trace::async_end("bucket", id);   // any thread
//
// Off (no --trace): a Span reads one flag and, in builds with NVTX (the CUDA toolkit's
// header-only nvtx3), pushes and pops an NVTX range, so `nsys` shows the same phases named
// in every run. On: recording happens only inside the step window (set_step), each event goes
// to its thread's own log (a mutex nobody else takes until the logs are drained), and nothing
// is formatted until the file is written.
//
// Device time: omp target regions are synchronous, so a span around them holds their device
// time. The program registers its backend's synchronize (set_device_sync; a no-op for omp and
// ref, a wait for queued kernels for cuda): while recording, a span of kind `device` waits for
// it before it ends, so its length is device time too (the wait is the price of seeing it;
// tracing off never waits). Use `device` only on the thread that launches the work.
//
// Threads: each thread that records names itself (name_thread); threads of the same name share
// one row (a loader starts a new reader thread each epoch). The first named thread is row 1.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace ompml::trace {

enum Kind { host, device };

// One recorded event, times in nanoseconds since this process's trace origin.
struct Event {
    char ph = 'X'; // X span, b/e async begin/end, C counter
    const char* name = "";
    const char* cat = "";
    int tid = 0;
    std::int64_t t_ns = 0, dur_ns = 0;
    std::int64_t step = -1;  // the training step (1-based) in progress, -1: none
    int layer = -1;          // args.layer, -1: none
    std::int64_t bytes = -1; // args.bytes, -1: none
    std::uint64_t id = 0;    // async spans
    double value = 0.0;      // counters
};

struct ThreadName {
    int tid;
    std::string name;
};

namespace detail {
extern std::atomic<bool> recording;
void record(const Event& e);
std::int64_t now_ns();
void nvtx_push(const char* name);
void nvtx_pop();
void device_sync();
} // namespace detail

// Process-wide: recording happens from enable() on, for steps first..last (1-based, inclusive).
void enable(std::int64_t first_step, std::int64_t last_step);
void disable();
// The step that begins now (the training loop calls it before each step), and its end: events
// between end_step and the next set_step (evaluation, checkpoints) belong to no step.
void set_step(std::int64_t step);
void end_step();
inline bool recording() { return detail::recording.load(std::memory_order_relaxed); }

// Names the calling thread's row ("train", "loader train", ...).
void name_thread(const std::string& name);
// Waits for queued device work (Kind::device spans while recording); empty: nothing to wait for.
void set_device_sync(std::function<void()> sync);

// Every event recorded since the last call, all threads; and the rows' names.
std::vector<Event> take_events();
std::vector<ThreadName> thread_names();
// Nanoseconds since the trace origin (the first enable()), the clock every event is on.
inline std::int64_t now_ns() { return detail::now_ns(); }

class Span {
public:
    explicit Span(const char* name, Kind kind = host, int layer = -1, std::int64_t bytes = -1)
        : name_(name), kind_(kind), layer_(layer), bytes_(bytes)
    {
        detail::nvtx_push(name);
        if (recording()) t0_ = detail::now_ns();
    }
    ~Span()
    {
        // Not while an exception unwinds: the device may be what failed, and nothing may throw here.
        if (t0_ >= 0 && recording() && std::uncaught_exceptions() == 0) {
            if (kind_ == device) detail::device_sync();
            Event e;
            e.name = name_;
            e.cat = kind_ == device ? "device" : "host";
            e.t_ns = t0_;
            e.dur_ns = detail::now_ns() - t0_;
            e.layer = layer_;
            e.bytes = bytes_;
            detail::record(e);
        }
        detail::nvtx_pop();
    }
    Span(const Span&) = delete;
    Span& operator=(const Span&) = delete;

private:
    const char* name_;
    Kind kind_;
    int layer_;
    std::int64_t bytes_;
    std::int64_t t0_ = -1;
};

void counter(const char* name, double value);
void async_begin(const char* name, std::uint64_t id, std::int64_t bytes = -1);
void async_end(const char* name, std::uint64_t id);
// A process-unique id for async spans.
std::uint64_t next_id();

} // namespace ompml::trace
