// The ref backend: sequential kernels on host memory. The oracle, and a baseline.
#include "backend/backends.hpp"
#include "backend/kernel_backend.hpp"

namespace ompml {
namespace {

class RefBackend final : public KernelBackend<Impl::ref> {
public:
    const MemorySpace& memory() const override { return host_memory(); }
    std::string device() const override { return "host (1 thread, sequential)"; }
    bool on_gpu() const override { return false; }
    void synchronize() const override {}
};

} // namespace

std::unique_ptr<Backend> make_ref_backend() { return std::make_unique<RefBackend>(); }

} // namespace ompml
