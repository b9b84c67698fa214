// gemm in CUDA for float operands (float or bf16 C): the tiled kernels of gemm_cuda.cuh.
// bf16 operands are instantiated in gemm_bf16_cuda.cu, a file of its own so the two compile in
// parallel (gemm_cuda.cuh says why).
#include "kernels/gemm_cuda.cuh"

namespace ompml {

template <>
void gemm<Impl::cuda>(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre)
{
    gemm_cuda::gemm_tiled(g, A, B, C, bias, pre);
}

template <>
void gemm<Impl::cuda>(const Gemm& g, const float* A, const float* B, bf16* C, const float* bias, float* pre)
{
    gemm_cuda::gemm_tiled(g, A, B, C, bias, pre);
}

} // namespace ompml
