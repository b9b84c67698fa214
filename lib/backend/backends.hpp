// Constructors of the built backends; only factory.cpp includes this.
#pragma once

#include "backend/backend.hpp"

namespace ompml {

std::unique_ptr<Backend> make_ref_backend();
std::unique_ptr<Backend> make_omp_backend();
#ifdef OMPML_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend();
DeviceHook make_cuda_device_hook(); // {cudaGetDeviceCount(), cudaSetDevice, "CUDA"}
#endif

} // namespace ompml
