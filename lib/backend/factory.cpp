// The one place that knows which backends this build has.
#include "backend/backends.hpp"
#include "backend/subnormals.hpp"
#include "core/check.hpp"

#ifdef OMPML_WITH_CUDA
#include "backend/backend_cuda.hpp"
#endif

namespace ompml {

std::vector<std::string> available_backends()
{
    std::vector<std::string> names{"ref", "omp"};
#ifdef OMPML_WITH_CUDA
    names.emplace_back("cuda");
#endif
    return names;
}

std::unique_ptr<Backend> make_backend(std::string_view name)
{
    // Host cores: the subnormal mode before the first kernel (subnormals.hpp).
    if (name == "ref" || name == "omp") set_subnormals(subnormals_from_env());
    if (name == "ref") return make_ref_backend();
    if (name == "omp") return make_omp_backend();
#ifdef OMPML_WITH_CUDA
    if (name == "cuda") return make_cuda_backend();
#endif
    std::string known;
    for (const auto& n : available_backends()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown backend '" + std::string(name) + "' (this build has: " + known + ")");
}

DeviceHook backend_device_hook(std::string_view name)
{
#ifdef OMPML_WITH_CUDA
    if (name == "cuda") return make_cuda_device_hook();
#endif
    (void)name; // ref and omp: OpenMP's default device or the host, set by the binding itself
    return {};
}

GpuPeak gpu_peak()
{
#ifdef OMPML_WITH_CUDA
    const DevicePeak d = cuda_device_peak(0);
    return {d.gbs, d.gflops};
#else
    return {};
#endif
}

} // namespace ompml
