// What the shared-memory sums (NodeSum, node_sum.hpp; HierSum's node level, hier_sum.hpp) share
// to work on a node's gradients together: chunks of a range claimed through one atomic slot
// each, and waiting for another rank of the node. Written once, for both.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>

namespace ompml::node_sync {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the node sums' counters must be lock-free atomics to work between processes");

constexpr std::size_t kPage = 4096;
constexpr std::size_t kSlots = 4096;          // most ranges one step may mark
constexpr std::size_t kChunk = 32768;         // elements per claim (128 KB of each fp32 buffer)
constexpr int kCountBits = 24;                // a slot: (range number + 1) << 24 | chunks counted
constexpr std::uint64_t kFailed = UINT64_MAX; // `finished` of a rank that found the ranges differ

// Spin briefly (the other rank is usually a few microseconds away), then yield, then nap, so
// an oversubscribed rank hands its core to the rank it waits for.
template <class Done>
void wait_until(Done done)
{
    for (int i = 0; !done(); ++i) {
        if (i < 256) {
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        } else if (i < 4096) {
            std::this_thread::yield();
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }
}

// A running hash of the ranges a rank marks (ranks compare them at the end of a step).
inline std::uint64_t mix(std::uint64_t h, std::uint64_t v)
{
    return (h ^ v) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
}

inline std::size_t chunks_of(std::size_t n) { return std::max<std::size_t>(1, (n + kChunk - 1) / kChunk); }

// The next unclaimed chunk of range number g (of `chunks`), or none when all are taken. A slot
// still tagged with an earlier range (every rank has finished that step) starts afresh.
inline std::optional<std::size_t> claim(std::atomic<std::uint64_t>& slot, std::uint64_t g, std::size_t chunks)
{
    const std::uint64_t tag = (g + 1) << kCountBits;
    std::uint64_t v = slot.load(std::memory_order_relaxed);
    for (;;) {
        const bool fresh = (v >> kCountBits) != g + 1;
        const std::uint64_t taken = fresh ? 0 : v & ((std::uint64_t{1} << kCountBits) - 1);
        if (taken >= chunks) return std::nullopt;
        if (slot.compare_exchange_weak(v, tag | (taken + 1), std::memory_order_relaxed)) return taken;
    }
}

// Counts one more chunk of range number g as stored (release: the chunk's sums are visible to a
// rank that sees the count).
inline void count_done(std::atomic<std::uint64_t>& slot, std::uint64_t g)
{
    const std::uint64_t tag = (g + 1) << kCountBits;
    std::uint64_t v = slot.load(std::memory_order_relaxed);
    for (;;) {
        const bool fresh = (v >> kCountBits) != g + 1;
        const std::uint64_t done = fresh ? 0 : v & ((std::uint64_t{1} << kCountBits) - 1);
        if (slot.compare_exchange_weak(v, tag | (done + 1), std::memory_order_release, std::memory_order_relaxed))
            return;
    }
}

// Chunks of range number g counted so far (acquire).
inline std::uint64_t done_count(const std::atomic<std::uint64_t>& slot, std::uint64_t g)
{
    const std::uint64_t v = slot.load(std::memory_order_acquire);
    return (v >> kCountBits) == g + 1 ? v & ((std::uint64_t{1} << kCountBits) - 1) : 0;
}

} // namespace ompml::node_sync
