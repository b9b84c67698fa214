// Softmax + cross-entropy in CUDA: one warp per row (lanes stride the classes; argmax, max
// and the exp-sum by shuffle trees), per-block loss/correct partials, then one block sums
// the partials in a fixed order; the two scalars are the only bytes copied back.
#include "kernels/cuda_common.cuh"
#include "kernels/softmax_xent.hpp"

#include <climits>
#include <cmath>

namespace ompml {
namespace {

constexpr int kRowsPerBlock = cuda::kBlock / 32;

// GRAD: whether dlogits is written; ROWS: whether row_loss is; decided once per call
// (decide_once, impl.hpp).
template <bool GRAD, bool ROWS>
__global__ void softmax_xent_kernel(int B, int C, const float* __restrict__ logits,
                                    const std::int32_t* __restrict__ labels, float scale, float* __restrict__ dlogits,
                                    double* __restrict__ row_loss, double* loss_part, long long* correct_part)
{
    // logits, dlogits: (B, C); labels: (B); loss_part, correct_part: (gridDim.x)
    const int lane = threadIdx.x & 31;
    double loss = 0.0; // lane 0 of each warp accumulates its rows
    long long correct = 0;
    for (int b = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5); b < B; b += gridDim.x * kRowsPerBlock) {
        const float* z = logits + static_cast<long>(b) * C; // (C)
        // argmax with ties going to the lowest index, as in the reference
        float zmax = lane < C ? z[lane] : -INFINITY;
        int arg = lane < C ? lane : INT_MAX;
        for (int c = lane + 32; c < C; c += 32)
            if (z[c] > zmax) {
                zmax = z[c];
                arg = c;
            }
        for (int off = 16; off > 0; off >>= 1) {
            const float om = __shfl_xor_sync(0xffffffffu, zmax, off);
            const int oa = __shfl_xor_sync(0xffffffffu, arg, off);
            if (om > zmax || (om == zmax && oa < arg)) {
                zmax = om;
                arg = oa;
            }
        }
        float sum = 0.0f;
        for (int c = lane; c < C; c += 32) sum += expf(z[c] - zmax);
        sum = cuda::warp_sum(sum);
        const int y = labels[b];
        if (lane == 0) {
            const double row = static_cast<double>(logf(sum) - (z[y] - zmax));
            loss += row;
            correct += (arg == y);
            if constexpr (ROWS) row_loss[b] = row;
        }
        if constexpr (GRAD) {
            const float inv = scale / sum;
            float* d = dlogits + static_cast<long>(b) * C; // (C)
            for (int c = lane; c < C; c += 32) d[c] = expf(z[c] - zmax) * inv - (c == y ? scale : 0.0f);
        }
    }
    loss = cuda::block_sum(loss);
    correct = cuda::block_sum(correct);
    if (threadIdx.x == 0) {
        loss_part[blockIdx.x] = loss;
        correct_part[blockIdx.x] = correct;
    }
}

} // namespace

template <>
XentStats softmax_xent<Impl::cuda>(int B, int C, const float* logits, const std::int32_t* labels, float scale,
                                   float* dlogits, double* row_loss)
{
    const int grid = std::min(cuda::kMaxReduceBlocks, (B + kRowsPerBlock - 1) / kRowsPerBlock);
    // scratch: loss partials (grid) | correct partials (grid) | loss total | correct total
    char* base = static_cast<char*>(cuda::scratch((2 * grid + 2) * 8));
    double* loss_part = reinterpret_cast<double*>(base);
    long long* correct_part = reinterpret_cast<long long*>(base + grid * 8);
    double* loss_total = reinterpret_cast<double*>(base + 2 * grid * 8);
    long long* correct_total = reinterpret_cast<long long*>(base + 2 * grid * 8 + 8);
    decide_once(dlogits != nullptr, [&](auto grad) {
        decide_once(row_loss != nullptr, [&](auto rows) {
            softmax_xent_kernel<decltype(grad)::value, decltype(rows)::value>
                <<<grid, cuda::kBlock>>>(B, C, logits, labels, scale, dlogits, row_loss, loss_part, correct_part);
        });
    });
    CUDA_CHECK_LAUNCH();
    cuda::sum_partials_kernel<<<1, 1024>>>(loss_part, grid, loss_total);
    CUDA_CHECK_LAUNCH();
    cuda::sum_partials_kernel<<<1, 1024>>>(correct_part, grid, correct_total);
    CUDA_CHECK_LAUNCH();
    struct {
        double loss;
        long long correct;
    } totals;
    static_assert(sizeof(totals) == 16, "two 8-byte totals, adjacent in scratch");
    CUDA_CHECK(cudaMemcpy(&totals, loss_total, sizeof(totals), cudaMemcpyDeviceToHost)); // waits for the kernels
    return {totals.loss, totals.correct};
}

} // namespace ompml
