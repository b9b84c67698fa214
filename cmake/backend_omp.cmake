# omp backend: the kernels as `omp target teams` directives. Flags come from cmake/openmp.cmake
# (OMPML_OFFLOAD, OMPML_OFFLOAD_ARCH).
target_sources(ompml_kernels PRIVATE
  kernels/gemm_omp.cpp kernels/activation_omp.cpp kernels/reduce_omp.cpp
  kernels/softmax_xent_omp.cpp kernels/normalize_omp.cpp kernels/blas1_omp.cpp
  kernels/optimizer_omp.cpp)
target_sources(ompml_backend PRIVATE backend/backend_omp.cpp)
message(STATUS "ompml: backend omp   : OpenMP target offload (${OMPML_OFFLOAD})")
