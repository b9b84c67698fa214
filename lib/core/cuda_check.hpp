// CUDA_CHECK: the one check macro for CUDA runtime calls. A failing call throws ompml::Error
// "expr: <cudaGetErrorString>" through one [[noreturn]] reporter (core/check.hpp; our source
// location only under OMPML_ERROR_SOURCE=1), so the CUDA kernels,
// the CUDA backend and the cuBLAS anchor all fail the same loud way. Include only from files
// compiled with the CUDA toolkit on the include path (*.cu, backend_cuda.cpp, cublas_anchor.cpp).
#pragma once

#include "core/check.hpp"

#include <cuda_runtime_api.h>

namespace ompml {

[[noreturn]] inline void cuda_fail(const char* file, int line, const char* expr, cudaError_t err)
{
    fail(file, line, expr, std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err));
}

} // namespace ompml

#define CUDA_CHECK(call)                                                                                               \
    do {                                                                                                               \
        const cudaError_t ompml_cuda_err_ = (call);                                                                    \
        if (ompml_cuda_err_ != cudaSuccess) ::ompml::cuda_fail(__FILE__, __LINE__, #call, ompml_cuda_err_);            \
    } while (0)

// After a kernel launch: catches bad launch configurations at once (errors raised while the
// kernel runs surface at the next synchronising call, which is checked too).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
