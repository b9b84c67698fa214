# OpenMP flags for the whole build: every translation unit and every link uses the same
# offload configuration (clang needs the offload targets on the link line too).
#
#   OMPML_OFFLOAD       none   : -fopenmp; target regions run on host cores (fast CPU path)
#                       host   : -fopenmp-targets=x86_64-unknown-linux-gnu; a virtual device
#                                with its own memory, so mapping mistakes fail without a GPU
#                       nvptx  : --offload-arch=${OMPML_OFFLOAD_ARCH}, NVIDIA GPUs
#   OMPML_OFFLOAD_ARCH  GPU architecture for nvptx (default sm_90, H100)
#   OMPML_OFFLOAD_LTO   -foffload-lto: device code of all files linked and optimised together
#                       when a library is linked (default ON for nvptx; see
#                       docs/directives-vs-cuda.md for what it changes per kernel)
#   OMPML_NATIVE        -march=native for host code (default ON)
set(OMPML_OFFLOAD "none" CACHE STRING "OpenMP offload target: none | host | nvptx")
set_property(CACHE OMPML_OFFLOAD PROPERTY STRINGS none host nvptx)
set(OMPML_OFFLOAD_ARCH "sm_90" CACHE STRING "GPU architecture for OMPML_OFFLOAD=nvptx")
if(OMPML_OFFLOAD STREQUAL "nvptx")
  set(_lto_default ON)
else()
  set(_lto_default OFF)
endif()
option(OMPML_OFFLOAD_LTO "Link-time optimisation of device code (-foffload-lto)" ${_lto_default})
option(OMPML_NATIVE "Tune host code for this machine (-march=native)" ON)

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "ompml needs LLVM clang (clang++-19) for OpenMP offload; got ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER}")
endif()

# Where clang keeps libomptarget and its device bitcode (…/lib of the LLVM install).
get_filename_component(_clang_bin "${CMAKE_CXX_COMPILER}" REALPATH)
get_filename_component(OMPML_LLVM_LIBDIR "${_clang_bin}/../../lib" REALPATH)

set(OMPML_OMP_FLAGS -fopenmp)
if(OMPML_OFFLOAD STREQUAL "host")
  list(APPEND OMPML_OMP_FLAGS -fopenmp-targets=x86_64-unknown-linux-gnu)
elseif(OMPML_OFFLOAD STREQUAL "nvptx")
  list(APPEND OMPML_OMP_FLAGS --offload-arch=${OMPML_OFFLOAD_ARCH}
       --libomptarget-nvptx-bc-path=${OMPML_LLVM_LIBDIR})
elseif(NOT OMPML_OFFLOAD STREQUAL "none")
  message(FATAL_ERROR "OMPML_OFFLOAD must be none, host or nvptx; got '${OMPML_OFFLOAD}'")
endif()
if(OMPML_OFFLOAD_LTO AND NOT OMPML_OFFLOAD STREQUAL "none")
  list(APPEND OMPML_OMP_FLAGS -foffload-lto)
endif()
# With -foffload-lto the device runtime bitcode is linked at link time, not per file: the
# compile lines leave out its path (clang would warn that it is unused there).
set(OMPML_OMP_COMPILE_FLAGS ${OMPML_OMP_FLAGS})
if(OMPML_OFFLOAD_LTO)
  list(FILTER OMPML_OMP_COMPILE_FLAGS EXCLUDE REGEX "^--libomptarget-nvptx-bc-path=")
endif()

# Everything compiles with -fopenmp and links with the full offload flags; only the libraries
# that hold target regions compile for the device too (ompml_offload_compile), so programs
# and tests that merely call them never push their headers (Boost, STL) through the device
# compiler.
add_library(ompml_openmp INTERFACE)
target_compile_options(ompml_openmp INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fopenmp>)
target_link_options(ompml_openmp INTERFACE ${OMPML_OMP_FLAGS} -Wl,-rpath,${OMPML_LLVM_LIBDIR})
# -fno-math-errno: no kernel reads errno, and without it sqrt is a library call that keeps
# the Adam update from vectorising on host cores.
function(ompml_offload_compile target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${OMPML_OMP_COMPILE_FLAGS} -fno-math-errno>)
endfunction()
if(NOT OMPML_OFFLOAD STREQUAL "none")
  target_compile_definitions(ompml_openmp INTERFACE OMPML_OFFLOAD=1)
endif()
# clang 19's -march=native on CPUs with AVX10.1 (Granite Rapids) warns in every file that
# "+avx10.1-256 will be promoted to avx10.1-512", which is what such a CPU runs: silenced.
if(OMPML_NATIVE)
  target_compile_options(ompml_openmp INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-march=native -Wno-invalid-feature-combination>)
endif()

string(REPLACE ";" " " _flags "${OMPML_OMP_FLAGS}")
message(STATUS "ompml: offload       : ${OMPML_OFFLOAD}")
message(STATUS "ompml: OpenMP flags  : ${_flags} -Wl,-rpath,${OMPML_LLVM_LIBDIR}")
message(STATUS "ompml: -march=native : ${OMPML_NATIVE}")
