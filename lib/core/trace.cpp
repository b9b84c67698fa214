// The process's trace recorder (trace.hpp): per-thread logs, the step window, NVTX.
#include "core/trace.hpp"

#include <chrono>
#include <memory>
#include <mutex>

// Host code only: the device pass of an offload build never sees the NVTX header.
#if OMPML_WITH_NVTX && !defined(__NVPTX__)
#define OMPML_NVTX 1
#include <nvtx3/nvToolsExt.h>
#endif

namespace ompml::trace {
namespace detail {
std::atomic<bool> recording{false};
} // namespace detail

namespace {

struct ThreadLog {
    int tid = 0;
    std::string name;
    std::mutex m; // taken by the owning thread per event, and by take_events()
    std::vector<Event> events;
};

struct Registry {
    std::mutex m;
    std::vector<std::unique_ptr<ThreadLog>> logs; // never shrinks: threads keep raw pointers
    std::atomic<bool> enabled{false};
    std::atomic<std::int64_t> step{0}, first{1}, last{0};
    std::atomic<bool> in_step{false};
    std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
    std::function<void()> sync;
    std::atomic<std::uint64_t> ids{0};
};

Registry& registry()
{
    static Registry r;
    return r;
}

thread_local ThreadLog* t_log = nullptr;

// The log of the row called `name` (created on first use; an empty name: a new row "thread N").
ThreadLog* log_named(const std::string& name)
{
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.m);
    for (const auto& l : r.logs)
        if (!name.empty() && l->name == name) return l.get();
    r.logs.push_back(std::make_unique<ThreadLog>());
    ThreadLog* l = r.logs.back().get();
    l->tid = static_cast<int>(r.logs.size());
    l->name = name.empty() ? "thread " + std::to_string(l->tid) : name;
    return l;
}

ThreadLog& my_log()
{
    if (t_log == nullptr) t_log = log_named("");
    return *t_log;
}

void update_recording()
{
    Registry& r = registry();
    const std::int64_t s = r.step.load();
    detail::recording.store(r.enabled.load() && s >= r.first.load() && s <= r.last.load());
}

} // namespace

namespace detail {

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - registry().origin)
        .count();
}

void record(const Event& e)
{
    ThreadLog& log = my_log();
    std::lock_guard<std::mutex> lk(log.m);
    log.events.push_back(e);
    Event& back = log.events.back();
    back.tid = log.tid;
    const Registry& r = registry();
    back.step = r.in_step.load(std::memory_order_relaxed) ? r.step.load(std::memory_order_relaxed) : -1;
}

void device_sync()
{
    const auto& sync = registry().sync;
    if (sync) sync();
}

#if OMPML_NVTX
void nvtx_push(const char* name) { nvtxRangePushA(name); }
void nvtx_pop() { nvtxRangePop(); }
#else
void nvtx_push(const char*) {}
void nvtx_pop() {}
#endif

} // namespace detail

void enable(std::int64_t first_step, std::int64_t last_step)
{
    Registry& r = registry();
    r.first = first_step;
    r.last = last_step;
    r.enabled = true;
    update_recording();
}

void disable()
{
    registry().enabled = false;
    update_recording();
}

void set_step(std::int64_t step)
{
    registry().step.store(step, std::memory_order_relaxed);
    registry().in_step.store(true, std::memory_order_relaxed);
    if (registry().enabled.load(std::memory_order_relaxed)) update_recording();
}

void end_step() { registry().in_step.store(false, std::memory_order_relaxed); }

void name_thread(const std::string& name) { t_log = log_named(name); }

void set_device_sync(std::function<void()> sync) { registry().sync = std::move(sync); }

std::vector<Event> take_events()
{
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.m);
    std::vector<Event> all;
    for (const auto& l : r.logs) {
        std::lock_guard<std::mutex> ll(l->m);
        all.insert(all.end(), l->events.begin(), l->events.end());
        l->events.clear();
    }
    return all;
}

std::vector<ThreadName> thread_names()
{
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.m);
    std::vector<ThreadName> v;
    for (const auto& l : r.logs) v.push_back({l->tid, l->name});
    return v;
}

namespace {

// A point event (a counter value, or one end of an async span), stamped now.
void record_point(char ph, const char* name, const char* cat, std::uint64_t id, std::int64_t bytes, double value)
{
    Event e;
    e.ph = ph;
    e.name = name;
    e.cat = cat;
    e.t_ns = detail::now_ns();
    e.id = id;
    e.bytes = bytes;
    e.value = value;
    detail::record(e);
}

} // namespace

void counter(const char* name, double value)
{
    if (recording()) record_point('C', name, "", 0, -1, value);
}

void async_begin(const char* name, std::uint64_t id, std::int64_t bytes)
{
    if (recording()) record_point('b', name, "async", id, bytes, 0.0);
}

// Also after the window closed, so a bucket in flight at its end is closed (the file drops an
// end whose begin it never saw).
void async_end(const char* name, std::uint64_t id)
{
    if (registry().enabled.load(std::memory_order_relaxed)) record_point('e', name, "async", id, -1, 0.0);
}

std::uint64_t next_id() { return ++registry().ids; }

} // namespace ompml::trace
