// What tests and drivers may ask about CUDA without including CUDA headers: whether this
// process can see a CUDA device. Only in builds with the CUDA backend (OMPML_WITH_CUDA).
#pragma once

#include <string>

namespace ompml {

// Number of CUDA devices visible to this process; 0 when there is none or no usable driver
// (never throws). When why is non-null and the answer is 0, it receives the runtime's reason
// (e.g. "CUDA driver version is insufficient for CUDA runtime version").
int cuda_device_count(std::string* why = nullptr);

} // namespace ompml
