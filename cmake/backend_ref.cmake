# ref backend: plain sequential C++ kernels (the oracle). Always built; no options.
target_sources(ompml_kernels PRIVATE
  kernels/gemm_ref.cpp kernels/activation_ref.cpp kernels/reduce_ref.cpp
  kernels/softmax_xent_ref.cpp kernels/normalize_ref.cpp kernels/blas1_ref.cpp
  kernels/optimizer_ref.cpp)
target_sources(ompml_backend PRIVATE backend/backend_ref.cpp)
message(STATUS "ompml: backend ref   : sequential C++")
