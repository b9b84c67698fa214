// Host and OpenMP memory spaces. OMPML_OFFLOAD is defined by cmake/openmp.cmake (on target
// ompml_openmp) when the build has an offload target; without one, libomptarget is not
// initialised and its omp_target_* calls must not be made (they would not even link; linked by
// hand, omp_get_num_devices crashes, as no offload image was registered), so omp memory is host
// memory.
#include "core/memory.hpp"

#include "core/check.hpp"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace ompml {
namespace {

constexpr std::size_t kAlign = 64;

class HostMemory final : public MemorySpace {
public:
    const char* name() const override { return "host"; }
    void* allocate(std::size_t bytes) const override
    {
        const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
        void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
        if (p == nullptr) throw Error("host allocation of " + std::to_string(bytes) + " bytes failed");
        return p;
    }
    void deallocate(void* p) const override { std::free(p); }
    void to_device(void* dst, const void* src, std::size_t bytes) const override { std::memcpy(dst, src, bytes); }
    void to_host(void* dst, const void* src, std::size_t bytes) const override { std::memcpy(dst, src, bytes); }
    void copy(void* dst, const void* src, std::size_t bytes) const override { std::memcpy(dst, src, bytes); }
};

#ifdef OMPML_OFFLOAD
class OmpMemory final : public MemorySpace {
public:
    const char* name() const override { return "omp"; }
    void* allocate(std::size_t bytes) const override
    {
        void* p = omp_target_alloc(bytes == 0 ? kAlign : bytes, omp_get_default_device());
        if (p == nullptr)
            throw Error("omp_target_alloc of " + std::to_string(bytes) + " bytes failed on device " +
                        std::to_string(omp_get_default_device()));
        return p;
    }
    void deallocate(void* p) const override
    {
        if (p != nullptr) omp_target_free(p, omp_get_default_device());
    }
    void to_device(void* dst, const void* src, std::size_t bytes) const override
    {
        move(dst, omp_get_default_device(), src, omp_get_initial_device(), bytes);
    }
    void to_host(void* dst, const void* src, std::size_t bytes) const override
    {
        move(dst, omp_get_initial_device(), src, omp_get_default_device(), bytes);
    }
    void copy(void* dst, const void* src, std::size_t bytes) const override
    {
        move(dst, omp_get_default_device(), src, omp_get_default_device(), bytes);
    }

private:
    static void move(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes)
    {
        if (bytes == 0) return;
        const int rc = omp_target_memcpy(dst, src, bytes, 0, 0, dst_dev, src_dev);
        OMPML_CHECK(rc == 0, "omp_target_memcpy of " + std::to_string(bytes) + " bytes returned " + std::to_string(rc));
    }
};
#endif

} // namespace

const MemorySpace& host_memory()
{
    static const HostMemory space;
    return space;
}

const MemorySpace& omp_memory()
{
#ifdef OMPML_OFFLOAD
    static const OmpMemory space;
    return space;
#else
    return host_memory();
#endif
}

int omp_device_count()
{
#ifdef OMPML_OFFLOAD
    return omp_get_num_devices();
#else
    return 0;
#endif
}

bool omp_runs_on_device()
{
    int initial = 1;
#pragma omp target map(from : initial)
    initial = omp_is_initial_device();
    return initial == 0;
}

#pragma omp declare target
[[maybe_unused]] static int device_is_nvptx_yes() { return 1; }
#pragma omp declare variant(device_is_nvptx_yes) match(device = {arch(nvptx64)})
static int device_is_nvptx() { return 0; }
#pragma omp end declare target

bool omp_device_is_gpu()
{
    static const bool gpu = [] {
        int on = 0;
#pragma omp target map(from : on)
        on = device_is_nvptx();
        return on != 0;
    }();
    return gpu;
}

std::string omp_device_description()
{
    const int n = omp_get_max_threads();
    const std::string threads = std::to_string(n) + (n == 1 ? " thread" : " threads");
    if (!omp_runs_on_device()) return "host (" + threads + ")";
    const std::string which = std::to_string(omp_get_default_device()) + " of " + std::to_string(omp_device_count());
    if (!omp_device_is_gpu()) return "virtual x86 offload device " + which + " on host cores (" + threads + ")";
    return "OpenMP GPU device " + which + " (nvptx64)";
}

} // namespace ompml
