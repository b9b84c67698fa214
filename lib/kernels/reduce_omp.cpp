// The column sum of a row-major (rows, cols) matrix as an OpenMP target kernel: one thread per
// output column on a GPU, where neighbouring threads read neighbouring columns (coalesced); on
// host cores blocks of 64 or 128 columns per thread (see col_block).
//
// thread_limit(64): a layer has few columns (hundreds to a few thousand), so smaller GPU teams
// spread them over more SMs than the default team size would. On host cores thread_limit is
// only an upper bound (teams keep OMP_NUM_THREADS threads when that is smaller), so the host
// layout is unchanged.
// No `simd` on the combined construct: see blas1_omp.cpp.
#include "kernels/reduce.hpp"

#include "core/memory.hpp"

namespace ompml {
namespace {
constexpr int kSmallTeam = 64;

// The host CPU's vendor is Intel (col_block); x86 builtins stay out of the device passes.
bool host_is_intel()
{
#if defined(__x86_64__) && !defined(__NVPTX__)
    return __builtin_cpu_is("intel");
#else
    return false;
#endif
}

// Columns one thread sums. On host cores, a block of adjacent columns per thread: the row loop
// then reads contiguous memory and vectorizes (one column per thread walks memory with a stride
// of the whole row: 20x slower at 1024 x 1024, measured), into 16-float accumulators. The
// width that feeds the prefetchers best differs by CPU, measured (min ms, 1024 x 1024 and
// 4096 x 1024; 128 x 512, the bias gradient, about the same at every width):
// - AMD EPYC Zen 5 (1000 runs): 128 columns (64: 0.061-0.071 and 0.31 ms; 128: 0.039-0.040
//   and 0.23-0.24);
// - Intel Xeon with AMX (400 runs): 64 (64: 0.064-0.071 and 0.30 ms; 128: 0.073 and 0.33; 256:
//   0.077 and 0.33-0.35).
// On a GPU, one column per thread, so a warp reads adjacent addresses. Asked once (see
// blas1_omp.cpp). Each column still sums its rows in order, so the width changes no bit of the
// result.
int col_block()
{
    static const int width = omp_device_is_gpu() ? 1 : host_is_intel() ? 64 : 128;
    return width;
}

// X: (rows, cols), out: (cols); W columns per thread (col_block).
template <int W, class O>
void col_sum_plain(int rows, int cols, const float* X, O* out)
{
    const int nb = (cols + W - 1) / W;
#pragma omp target teams distribute parallel for thread_limit(kSmallTeam) is_device_ptr(X, out)
    for (int blk = 0; blk < nb; ++blk) {
        if constexpr (W == 1) {
            const int c = blk;
            float s = 0.0f;
            for (int r = 0; r < rows; ++r) s += X[static_cast<long>(r) * cols + c];
            out[c] = from_float<O>(s);
        } else {
            const int c0 = blk * W, w = cols - c0 < W ? cols - c0 : W;
            float acc[W] = {};
            if (w == W) { // a whole block: a constant trip count keeps acc in registers
                for (int r = 0; r < rows; ++r) {
                    const float* x = X + static_cast<long>(r) * cols + c0; // (W) of row r
#pragma omp metadirective when(device = {arch(nvptx64)} : nothing) default(simd)
                    for (int c = 0; c < W; ++c) acc[c] += x[c];
                }
            } else {
                for (int r = 0; r < rows; ++r) {
                    const float* x = X + static_cast<long>(r) * cols + c0; // (w) of row r
#pragma omp metadirective when(device = {arch(nvptx64)} : nothing) default(simd)
                    for (int c = 0; c < w; ++c) acc[c] += x[c];
                }
            }
            for (int c = 0; c < w; ++c) out[c0 + c] = from_float<O>(acc[c]);
        }
    }
}

// The chunked sum (col_sum's kc): per column, each chunk's rows in order, the chunks' sums into
// a TreeSum. One column per thread on every device: the mode's point is the order, not the
// speed, and a bias gradient has few columns and rows.
template <class O>
void col_sum_chunked(int cols, const float* X, O* out, const KChunks kc)
{
    // X: (rows, cols), out: (cols)
#pragma omp target teams distribute parallel for thread_limit(kSmallTeam) is_device_ptr(X, out)
    for (int c = 0; c < cols; ++c) {
        TreeSum<float> t;
        for (int ch = 0; ch < kc.count; ++ch) {
            float s = 0.0f;
            for (long r = chunk_row(kc, ch); r < chunk_row(kc, ch + 1); ++r) s += X[r * cols + c];
            t.add(s);
        }
        out[c] = from_float<O>(t.total());
    }
}

template <class O>
void col_sum_omp(int rows, int cols, const float* X, O* out, const KChunks& kc)
{
    if (kc.chunks > 0) return col_sum_chunked(cols, X, out, kc);
    switch (col_block()) {
    case 1: return col_sum_plain<1>(rows, cols, X, out);
    case 64: return col_sum_plain<64>(rows, cols, X, out);
    default: return col_sum_plain<128>(rows, cols, X, out);
    }
}

} // namespace

template <>
void col_sum<Impl::omp>(int rows, int cols, const float* X, float* out, const KChunks& kc)
{
    col_sum_omp(rows, cols, X, out, kc);
}
template <>
void col_sum<Impl::omp>(int rows, int cols, const float* X, bf16* out, const KChunks& kc)
{
    col_sum_omp(rows, cols, X, out, kc);
}

} // namespace ompml
