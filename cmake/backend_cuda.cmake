# cuda backend: hand-written CUDA twins of every kernel. Built when nvcc is found.
#   OMPML_CUDA                AUTO (build when nvcc is found) | ON (require) | OFF
#   CMAKE_CUDA_ARCHITECTURES  default 90 (H100); e.g. -DCMAKE_CUDA_ARCHITECTURES="80;90"
#   CMAKE_CUDA_COMPILER       nvcc to use (the gpu preset: /usr/local/cuda/bin/nvcc)
# Sets OMPML_WITH_CUDA (here and in the parent scope, so tests/ and drivers/ see it).
# The bench's cuBLAS anchor is not part of this backend: lib/CMakeLists.txt adds it to
# ompml_bench when CUDA::cublas (found here) exists.
#
# Only lib/kernels/*_cuda.cu go through nvcc; the backend (and the bench's cuBLAS anchor) are
# host code compiled by clang against the CUDA runtime API, so no target outside lib/ needs the
# CUDA language (enable_language here is directory-scoped).
set(OMPML_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO | ON | OFF")
set_property(CACHE OMPML_CUDA PROPERTY STRINGS AUTO ON OFF)
set(OMPML_WITH_CUDA OFF)
if(NOT OMPML_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(OMPML_WITH_CUDA ON)
  elseif(OMPML_CUDA STREQUAL "ON")
    message(FATAL_ERROR "OMPML_CUDA=ON but no CUDA compiler (nvcc) was found; set CMAKE_CUDA_COMPILER")
  endif()
endif()
set(OMPML_WITH_CUDA ${OMPML_WITH_CUDA} PARENT_SCOPE)
if(NOT OMPML_WITH_CUDA)
  message(STATUS "ompml: backend cuda  : skipped (nvcc not found or OMPML_CUDA=OFF)")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
# Stock CMake 3.25/3.26 (Debian 12 ships 3.25.1) sets a deprecation property on
# CUDA::nvToolsExt whenever the project's cmake_minimum_required is >= 3.25, without checking
# that the target exists; CUDA 12.9 and 13 ship no libnvToolsExt (NVTX is header-only nvtx3),
# so configure would stop with "set_property could not find TARGET CUDA::nvToolsExt". The
# module reads CMAKE_MINIMUM_REQUIRED_VERSION for that warning only, so it sees 3.24 during the
# call; CMake 3.27 and later check the target themselves and are unaffected.
set(_ompml_min_version ${CMAKE_MINIMUM_REQUIRED_VERSION})
set(CMAKE_MINIMUM_REQUIRED_VERSION 3.24)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_MINIMUM_REQUIRED_VERSION ${_ompml_min_version})

# NVTX ranges for the trace's phases (core/trace.cpp), so nsys names them for the omp and the
# cuda backend alike: the toolkit's header-only nvtx3 (no library to link; dlopen is in glibc).
find_path(OMPML_NVTX_INCLUDE nvtx3/nvToolsExt.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
if(OMPML_NVTX_INCLUDE)
  target_include_directories(ompml_core PRIVATE ${OMPML_NVTX_INCLUDE})
  target_compile_definitions(ompml_core PRIVATE OMPML_WITH_NVTX=1)
  message(STATUS "ompml: NVTX ranges   : ${OMPML_NVTX_INCLUDE}/nvtx3")
endif()

ompml_kernel_sources(_ompml_cuda_sources _cuda.cu)
# gemm's bf16-operand kernels: a file of their own, compiled beside gemm_cuda.cu (gemm_cuda.cuh).
target_sources(ompml_kernels PRIVATE ${_ompml_cuda_sources} kernels/gemm_bf16_cuda.cu)
target_sources(ompml_backend PRIVATE backend/backend_cuda.cpp)
# PUBLIC: the backend and anything including core/cuda_check.hpp need the runtime's headers.
target_link_libraries(ompml_kernels PUBLIC CUDA::cudart)
# C++17: CMake 3.25 knows no C++20 flag for nvcc, and the kernels need nothing newer.
# Shared cudart everywhere: a static copy inside libompml_kernels.so plus another in a program
# would be two runtimes with separate state.
set_target_properties(ompml_kernels PROPERTIES
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_RUNTIME_LIBRARY Shared)
target_compile_definitions(ompml_backend PUBLIC OMPML_WITH_CUDA=1)

# nvcc rejects -Wall/-Wextra (added for every language by the top-level add_compile_options):
# restrict the directory's plain options on ompml_kernels to C++, and give nvcc the warnings
# through -Xcompiler instead. OpenMP flags already reach C++ only ($<COMPILE_LANGUAGE:CXX> in
# cmake/openmp.cmake). The kernel headers carry `#pragma omp declare target`, which means
# nothing to nvcc or to its host compiler: silence exactly that warning in both.
get_target_property(_opts ompml_kernels COMPILE_OPTIONS)
if(_opts)
  set(_wrapped "")
  foreach(_o IN LISTS _opts)
    if(_o MATCHES "^\\$<")
      list(APPEND _wrapped "${_o}")
    else()
      list(APPEND _wrapped "$<$<COMPILE_LANGUAGE:CXX>:${_o}>")
    endif()
  endforeach()
  set_property(TARGET ompml_kernels PROPERTY COMPILE_OPTIONS "${_wrapped}")
endif()
set(OMPML_CUDA_FLAGS
  -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas
  -Xcudafe=--diag_suppress=unrecognized_pragma
  -lineinfo) # source lines in profiles (Nsight Compute); no effect on the generated code
target_compile_options(ompml_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${OMPML_CUDA_FLAGS}>)

string(TOUPPER "${CMAKE_BUILD_TYPE}" _cfg)
string(REPLACE ";" " " _flags "${OMPML_CUDA_FLAGS}")
set(_arch_flags "")
foreach(_a IN LISTS CMAKE_CUDA_ARCHITECTURES)
  string(APPEND _arch_flags " -gencode=arch=compute_${_a},code=[compute_${_a},sm_${_a}]")
endforeach()
if(CMAKE_CUDA_HOST_COMPILER)
  set(_host "${CMAKE_CUDA_HOST_COMPILER}")
else()
  set(_host "nvcc's default (g++ on PATH)")
endif()
message(STATUS "ompml: backend cuda  : nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), host compiler ${_host}")
message(STATUS "ompml: nvcc flags    : ${CMAKE_CUDA_FLAGS} ${CMAKE_CUDA_FLAGS_${_cfg}} -std=c++17${_arch_flags} ${_flags}")
message(STATUS "ompml: cuda runtime  : CUDA::cudart ${CUDAToolkit_VERSION} (shared)")
