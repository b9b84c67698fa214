// The host's peak multiply-add rates, measured rather than looked up: register-only loops on
// every OpenMP thread at once, so a host gemm row can say what share of this CPU it reached
// (peak_pct), whatever the CPU and its clocks. The fp32 loop runs 12 independent chains of
// 16-float FMAs per thread (enough to cover the FMA latency on two pipes); the bf16 loop the same
// with VDPBF16PS (2 products per float lane), on CPUs with AVX512-BF16.
#pragma once

namespace ompml::bench {

struct HostPeak {
    double fp32_gflops = 0.0; // FMA: 2 FLOPs per lane
    double bf16_gflops = 0.0; // VDPBF16PS: 4 FLOPs per float lane; 0 without AVX512-BF16
    int threads = 0;
};

// Each thread's best of a few short runs (about 0.1 s in all), summed over the threads: a
// preempted run only lowers its own figure.
HostPeak measure_host_peak();

} // namespace ompml::bench
