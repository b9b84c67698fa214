// measure_host_peak (host_peak.hpp): register-only multiply-add loops, timed on all threads.
#include "bench/host_peak.hpp"

#include "core/timer.hpp"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define OMPML_PEAK_X86 1
#else
#define OMPML_PEAK_X86 0
#endif

namespace ompml::bench {
namespace {

constexpr int kChains = 12;       // independent accumulators per thread
constexpr long kIters = 1L << 20; // per run: 12 x 2^20 vector multiply-adds per thread
constexpr int kRuns = 25;

typedef float vfloat16 __attribute__((vector_size(64)));

// kIters steps of kChains FMAs of 16 floats; the result keeps the loop from being removed.
__attribute__((min_vector_width(512), noinline)) float fma_chains(float x)
{
    vfloat16 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = vfloat16{} + x * static_cast<float>(c);
    const vfloat16 a = vfloat16{} + 0.999f, b = vfloat16{} + 0.001f; // converges: no overflow, no subnormals
    for (long i = 0; i < kIters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b; // contracted into one FMA
    float s = 0.0f;
    for (int c = 0; c < kChains; ++c) s += acc[c][0];
    return s;
}

#if OMPML_PEAK_X86
__attribute__((target("avx512f,avx512bf16"), min_vector_width(512), noinline)) float dpbf16_chains(float x)
{
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(x * static_cast<float>(c));
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (long i = 0; i < kIters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    float s = 0.0f;
    for (int c = 0; c < kChains; ++c) s += _mm512_reduce_add_ps(acc[c]);
    return s;
}
bool has_avx512bf16() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"); }
#else
float dpbf16_chains(float) { return 0.0f; }
bool has_avx512bf16() { return false; }
#endif

// GFLOP/s of `chains` run on every thread at once (flops_per_lane_op per lane and op): each
// thread's best of kRuns runs (about 2 ms each), timed by the thread itself, summed over the
// threads. On a shared VM the other vCPU can be away for tens of milliseconds: timed as a team, 5
// runs once measured one core's rate as the peak (peak_pct above 100), and on a busier day 25 runs
// did (2026-12-07: 225 against 481 GFLOP/s); a thread's own clock is not stopped by the other's
// absence.
template <class F>
double best_rate(F chains, double flops_per_lane_op, int threads)
{
    std::vector<double> best(static_cast<std::size_t>(threads), 0.0);
    const double flops = static_cast<double>(kIters) * kChains * 16 * flops_per_lane_op; // per thread and run
    for (int run = 0; run < kRuns; ++run) {
        volatile float sink = 0.0f;
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num();
            Stopwatch sw;
            const float s = chains(1.0f + t);
            best[t] = std::max(best[t], flops / (sw.millis() * 1e-3) * 1e-9);
#pragma omp critical
            sink = sink + s;
        }
    }
    return std::accumulate(best.begin(), best.end(), 0.0);
}
} // namespace

HostPeak measure_host_peak()
{
    HostPeak p;
    p.threads = omp_get_max_threads();
    p.fp32_gflops = best_rate(fma_chains, 2.0, p.threads);
    if (has_avx512bf16()) p.bf16_gflops = best_rate(dpbf16_chains, 4.0, p.threads);
    return p;
}

} // namespace ompml::bench
