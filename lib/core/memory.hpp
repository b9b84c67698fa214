// Memory spaces: where a buffer lives and how bytes move between it and the host.
// host  : plain aligned host memory (the ref backend, and omp in builds without offload);
// omp   : omp_target_alloc on the default OpenMP device (a GPU, or the virtual x86 device of
//         the offload-check build; host memory when the build has no offload target);
// cuda  : cudaMalloc, provided by the CUDA backend (lib/backend/backend_cuda.cpp).
#pragma once

#include <cstddef>
#include <string>

namespace ompml {

class MemorySpace {
public:
    virtual ~MemorySpace() = default;
    virtual const char* name() const = 0;
    virtual void* allocate(std::size_t bytes) const = 0;
    virtual void deallocate(void* p) const = 0;
    virtual void to_device(void* dst, const void* host_src, std::size_t bytes) const = 0;
    virtual void to_host(void* host_dst, const void* src, std::size_t bytes) const = 0;
    virtual void copy(void* dst, const void* src, std::size_t bytes) const = 0; // device to device
};

const MemorySpace& host_memory();
const MemorySpace& omp_memory();

// What the OpenMP runtime offers: number of devices, the default one, and a description of
// where target regions run ("host (2 threads)" or "OpenMP device 0 of 1 (nvptx)").
int omp_device_count();
std::string omp_device_description();
// True when a target region actually executes on a non-host device (checked by running one;
// the virtual x86 device of the offload-check build counts).
bool omp_runs_on_device();
// True when target regions run on an NVIDIA GPU (nvptx64), asked once per run: picks launch
// shapes, and keeps a host or virtual-device run from ever being reported as a GPU figure.
bool omp_device_is_gpu();

} // namespace ompml
