# omp backend: the kernels as `omp target teams` directives. Flags come from cmake/openmp.cmake
# (OMPML_OFFLOAD, OMPML_OFFLOAD_ARCH).
ompml_kernel_sources(_omp_sources _omp.cpp)
target_sources(ompml_kernels PRIVATE ${_omp_sources})
target_sources(ompml_backend PRIVATE backend/backend_omp.cpp)
message(STATUS "ompml: backend omp   : OpenMP target offload (${OMPML_OFFLOAD})")
