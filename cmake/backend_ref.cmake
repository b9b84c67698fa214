# ref backend: plain sequential C++ kernels (the oracle). Always built; no options.
ompml_kernel_sources(_ref_sources _ref.cpp)
target_sources(ompml_kernels PRIVATE ${_ref_sources})
target_sources(ompml_backend PRIVATE backend/backend_ref.cpp)
message(STATUS "ompml: backend ref   : sequential C++")
