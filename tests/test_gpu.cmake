# test_gpu: the cuda and omp kernels on a real GPU against the reference (label gpu). Only in
# builds that can have a GPU. OMP_TARGET_OFFLOAD=MANDATORY turns a missing device into an error
# instead of a silent host run; without a GPU the test exits 77 and ctest reports it skipped.
if(OMPML_WITH_CUDA OR OMPML_OFFLOAD STREQUAL "nvptx")
  ompml_test(test_gpu LABELS gpu SOURCES test_gpu.cpp LIBS ompml_backend)
  set_tests_properties(test_gpu PROPERTIES ENVIRONMENT OMP_TARGET_OFFLOAD=MANDATORY SKIP_RETURN_CODE 77)
endif()
