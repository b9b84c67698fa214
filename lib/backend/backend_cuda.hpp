// What tests and drivers may ask about CUDA without including CUDA headers: whether this
// process can see a CUDA device. Only in builds with the CUDA backend (OMPML_WITH_CUDA).
#pragma once

#include <string>

namespace ompml {

// Number of CUDA devices visible to this process; 0 when there is none or no usable driver
// (never throws). When why is non-null and the answer is 0, it receives the runtime's reason
// (e.g. "CUDA driver version is insufficient for CUDA runtime version").
int cuda_device_count(std::string* why = nullptr);

// The CUDA device current in this thread (cudaGetDevice: what rank -> device binding selected,
// lib/parallel/comm.hpp); -1 when there is no usable device.
int cuda_current_device();

// Theoretical peaks of CUDA device dev from its attributes, the denominators of "% of peak":
// DRAM bandwidth = 2 transfers per memory clock x bus width; FP32 = SMs x FP32 lanes per SM x
// 2 (a fused multiply-add) x SM clock (boost). Zeros when there is no such device.
struct DevicePeak {
    double gbs = 0.0;    // GB/s
    double gflops = 0.0; // GFLOP/s, FP32 without tensor cores
};
DevicePeak cuda_device_peak(int dev = 0);

} // namespace ompml
