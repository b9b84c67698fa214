// The omp backend: OpenMP target kernels on the default OpenMP device (a GPU in the gpu
// build, host cores otherwise). Target regions here are synchronous, so synchronize is empty.
#include "backend/backends.hpp"
#include "backend/kernel_backend.hpp"

#include <cstdlib>
#include <strings.h>

namespace ompml {
namespace {

// OMP_TARGET_OFFLOAD=MANDATORY with no offload device: the first target region would end the
// process inside the OpenMP runtime (with clang 19: "No images found compatible with the
// installed hardware", then a segmentation fault). Say it in one line before any target region.
void check_mandatory_offload()
{
#ifdef OMPML_OFFLOAD
    const char* policy = std::getenv("OMP_TARGET_OFFLOAD");
    if (policy != nullptr && strcasecmp(policy, "MANDATORY") == 0 && omp_device_count() == 0)
        throw Error("omp backend: OMP_TARGET_OFFLOAD=MANDATORY, but OpenMP sees no offload device (no GPU or no "
                    "usable driver here); unset OMP_TARGET_OFFLOAD to run the kernels on host cores");
#endif
}

class OmpBackend final : public KernelBackend<Impl::omp> {
public:
    OmpBackend()
    {
        check_mandatory_offload(); // before the first target region
        device_ = omp_device_description();
        on_gpu_ = omp_device_is_gpu();
    }
    const MemorySpace& memory() const override { return omp_memory(); }
    std::string device() const override { return device_; }
    bool on_gpu() const override { return on_gpu_; }
    void synchronize() const override {}

private:
    std::string device_;
    bool on_gpu_ = false;
};

} // namespace

std::unique_ptr<Backend> make_omp_backend() { return std::make_unique<OmpBackend>(); }

} // namespace ompml
