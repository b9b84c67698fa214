// The omp backend: OpenMP target kernels on the default OpenMP device (a GPU in the gpu
// build, host cores otherwise). Target regions here are synchronous, so synchronize is empty.
#include "backend/backends.hpp"
#include "backend/kernel_backend.hpp"

namespace ompml {
namespace {

class OmpBackend final : public KernelBackend<Impl::omp> {
public:
    OmpBackend() : device_(omp_device_description()), on_gpu_(omp_device_is_gpu()) {}
    const MemorySpace& memory() const override { return omp_memory(); }
    std::string device() const override { return device_; }
    bool on_gpu() const override { return on_gpu_; }
    void synchronize() const override {}

private:
    std::string device_;
    bool on_gpu_;
};

} // namespace

std::unique_ptr<Backend> make_omp_backend() { return std::make_unique<OmpBackend>(); }

} // namespace ompml
