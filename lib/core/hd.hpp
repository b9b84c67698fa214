// OMPML_HD marks small inline functions shared by every backend (host, OpenMP device, CUDA):
// loop bodies are written once and seen by all three compilers.
#pragma once

#ifdef __CUDACC__
#define OMPML_HD __host__ __device__
#else
#define OMPML_HD
#endif
