// Kernels of the omp backend against the sequential reference.
#define BOOST_TEST_MODULE kernels
#include "support.hpp"

using namespace ompml;
using namespace ompml::test;

BOOST_AUTO_TEST_CASE(gemm_small_matches_reference)
{
    auto ref = make_backend("ref");
    auto omp = make_backend("omp");
    const int M = 7, N = 33, K = 5;
    Gemm g{false, true, M, N, K, 1.0f, 0.0f, Act::relu};
    auto A = random_floats(M * K, 1), B = random_floats(N * K, 2), bias = random_floats(N, 3);
    std::vector<float> Cref(M * N);
    ref->gemm(g, A.data(), B.data(), Cref.data(), bias.data());
    auto dA = upload(*omp, A), dB = upload(*omp, B), dbias = upload(*omp, bias);
    DeviceBuffer<float> dC(omp->memory(), M * N);
    omp->gemm(g, dA.data(), dB.data(), dC.data(), dbias.data());
    check_close(dC.to_vector(), Cref, 1e-5, 1e-5, "gemm");
}
