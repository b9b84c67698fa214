// gemm in CUDA for bf16 operands (float or bf16 C): the tiled kernels of gemm_cuda.cuh, which
// widen the operands to float as the tiles are staged. Float operands: gemm_cuda.cu.
#include "kernels/gemm_cuda.cuh"

namespace ompml {

template <>
void gemm<Impl::cuda>(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias, float* pre)
{
    gemm_cuda::gemm_tiled(g, A, B, C, bias, pre);
}

template <>
void gemm<Impl::cuda>(const Gemm& g, const bf16* A, const bf16* B, bf16* C, const float* bias, float* pre)
{
    gemm_cuda::gemm_tiled(g, A, B, C, bias, pre);
}

} // namespace ompml
