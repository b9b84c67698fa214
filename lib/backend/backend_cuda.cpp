// The cuda backend: the hand-written CUDA kernels (lib/kernels/*_cuda.cu) on cudaMalloc'd
// memory of the current CUDA device. Kernels are queued on the default stream; synchronize()
// waits for them (timing), and every copy back to the host waits by itself (cudaMemcpy).
// Host-only code: compiled by the C++ compiler against the CUDA runtime API.
#include "backend/backend_cuda.hpp"
#include "backend/backends.hpp"
#include "backend/kernel_backend.hpp"
#include "core/cuda_check.hpp"

#include <cstdio>

namespace ompml {
namespace {

class CudaMemory final : public MemorySpace {
public:
    const char* name() const override { return "cuda"; }
    void* allocate(std::size_t bytes) const override
    {
        void* p = nullptr;
        // 256: cudaMalloc's own alignment; a zero-byte buffer still gets a distinct pointer
        const cudaError_t err = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
        if (err != cudaSuccess)
            throw Error("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(err));
        return p;
    }
    void deallocate(void* p) const override
    {
        // Called from destructors: report, never throw. At process exit the runtime may already
        // be unloading, which is harmless.
        const cudaError_t err = cudaFree(p);
        if (err != cudaSuccess && err != cudaErrorCudartUnloading)
            std::fprintf(stderr, "ompml: cudaFree failed: %s\n", cudaGetErrorString(err));
    }
    void to_device(void* dst, const void* src, std::size_t bytes) const override
    {
        if (bytes != 0) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    }
    void to_host(void* dst, const void* src, std::size_t bytes) const override
    {
        if (bytes != 0) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    }
    void copy(void* dst, const void* src, std::size_t bytes) const override
    {
        if (bytes != 0) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
    }
};

const MemorySpace& cuda_memory()
{
    static const CudaMemory space;
    return space;
}

class CudaBackend final : public KernelBackend<Impl::cuda> {
public:
    CudaBackend()
    {
        std::string why;
        if (cuda_device_count(&why) == 0) throw Error("cuda backend: no CUDA device (" + why + ")");
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        cudaDeviceProp prop{};
        CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
        device_ = "CUDA device " + std::to_string(dev) + ": " + prop.name + " (sm_" + std::to_string(prop.major) +
            std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " +
            std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
    }
    const MemorySpace& memory() const override { return cuda_memory(); }
    std::string device() const override { return device_; }
    bool on_gpu() const override { return true; }
    void synchronize() const override { CUDA_CHECK(cudaDeviceSynchronize()); }

private:
    std::string device_;
};

} // namespace

int cuda_device_count(std::string* why)
{
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        // cudaGetDeviceCount's errors are not sticky, but clear the last-error slot so a
        // later CUDA_CHECK_LAUNCH() does not report this one.
        (void)cudaGetLastError();
        if (why != nullptr) *why = cudaGetErrorString(err);
        return 0;
    }
    if (n == 0 && why != nullptr) *why = "the CUDA runtime reports 0 devices";
    return n;
}

DevicePeak cuda_device_peak(int dev)
{
    if (dev >= cuda_device_count()) return {};
    auto attr = [dev](cudaDeviceAttr a) {
        int v = 0;
        CUDA_CHECK(cudaDeviceGetAttribute(&v, a, dev));
        return static_cast<double>(v);
    };
    const int major = static_cast<int>(attr(cudaDevAttrComputeCapabilityMajor));
    const int minor = static_cast<int>(attr(cudaDevAttrComputeCapabilityMinor));
    // FP32 lanes per SM: 64 on sm_60, sm_70/75 and sm_80 (A100); 128 on sm_61, sm_86/89, sm_90
    // (H100) and later.
    const double lanes = (major == 7 || (major == 6 && minor == 0) || (major == 8 && minor == 0)) ? 64 : 128;
    DevicePeak p;
    p.gbs = 2.0 * attr(cudaDevAttrMemoryClockRate) * 1e3 * attr(cudaDevAttrGlobalMemoryBusWidth) / 8.0 * 1e-9;
    p.gflops = attr(cudaDevAttrMultiProcessorCount) * lanes * 2.0 * attr(cudaDevAttrClockRate) * 1e3 * 1e-9;
    return p;
}

int cuda_current_device()
{
    int dev = -1;
    if (cuda_device_count() == 0 || cudaGetDevice(&dev) != cudaSuccess) {
        (void)cudaGetLastError(); // as in cuda_device_count: leave no error for a later check
        return -1;
    }
    return dev;
}

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

DeviceHook make_cuda_device_hook()
{
    // cudaSetDevice before the backend's first cudaMalloc: CudaMemory allocates on the device
    // current in the calling thread, and CudaBackend reports that device.
    return {cuda_device_count(), [](int dev) { CUDA_CHECK(cudaSetDevice(dev)); }, "CUDA"};
}

} // namespace ompml
