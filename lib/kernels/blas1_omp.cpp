// Vector kernels (fill, sum of squares) as OpenMP target kernels over device pointers.
//
// Why no `simd` on the combined construct: clang attaches the vectorize hint of
// `target teams distribute parallel for simd` to the *distribute* loop too; in a host build
// (target regions on host cores) that loop runs over team chunks and calls the runtime, so it
// cannot vectorize and clang warns (-Wpass-failed=transform-warning). The per-thread loop
// vectorizes without the hint (runtime alias checks; checked with -Rpass=loop-vectorize), and
// nvptx ignores `simd` anyway, so dropping it loses nothing on either side.
//
// Why no num_teams/thread_limit on the streaming kernels: on the host, libomp's default is one
// team of OMP_NUM_THREADS threads, which is exactly the `parallel for` layout (an explicit
// num_teams > 1 would split the cores into teams); on a GPU, clang's SPMD launch sizes the
// grid from the trip count. Both defaults are what a streaming kernel wants.
#include "kernels/blas1.hpp"
#include "kernels/omp_index.hpp"

#include "core/memory.hpp"

namespace ompml {
namespace {

// Elements one iteration of a reduction loop sums (see sum_squares). Asked once: whether
// target regions reach a GPU does not change during a run, and a wrong guess only costs speed.
std::size_t omp_lanes()
{
    static const bool gpu = omp_device_is_gpu();
    return gpu ? 1 : 64;
}

// The loops, templated on the index type (int where the length allows: omp_index.hpp).
template <class I, class T> // T: float or bf16
void fill_loop(I n, T* X, T value)
{
    // X: (n)
#pragma omp target teams distribute parallel for is_device_ptr(X)
    for (I i = 0; i < n; ++i) X[i] = value;
}

// X: (n). A double sum cannot vectorize in order, so each iteration of the parallel loop sums L
// elements with an inner `simd` reduction (reassociation allowed there): on host cores L = 64
// contiguous floats (10x faster than one element per iteration, measured); on a GPU L = 1, one
// element per thread, so neighbouring threads read neighbouring addresses. The result does not
// depend on L beyond rounding.
template <class I, class T> // T: float or bf16
double sum_squares_loop(I n, I L, const T* X)
{
    const I nb = (n + L - 1) / L;
    double s = 0.0;
#pragma omp target teams distribute parallel for reduction(+ : s) is_device_ptr(X) map(tofrom : s)
    for (I b = 0; b < nb; ++b) {
        const I lo = b * L, hi = lo + L < n ? lo + L : n;
        double part = 0.0;
        // `nothing` on nvptx: a GPU thread has no vector lanes, and a `simd` there makes clang
        // warn that it could not vectorize.
#pragma omp metadirective when(device = {arch(nvptx64)} : nothing) default(simd reduction(+ : part))
        for (I i = lo; i < hi; ++i) {
            const double x = to_float(X[i]);
            part += x * x;
        }
        s += part;
    }
    return s;
}

} // namespace

template <class T>
void fill_omp(std::size_t n, T* X, float value)
{
    const T v = from_float<T>(value);
    with_loop_index(n, [&](auto len) { fill_loop(len, X, v); });
}

template <>
void fill<Impl::omp>(std::size_t n, float* X, float value)
{
    fill_omp(n, X, value);
}
template <>
void fill<Impl::omp>(std::size_t n, bf16* X, float value)
{
    fill_omp(n, X, value);
}

template <class T>
double sum_squares_omp(std::size_t n, const T* X)
{
    // n + L - 1 must stay within the int range too (omp_index.hpp).
    const std::size_t L = omp_lanes();
    double s = 0.0;
    with_loop_index(n + L - 1, [&](auto bound) {
        using I = decltype(bound);
        s = sum_squares_loop(static_cast<I>(n), static_cast<I>(L), X);
    });
    return s;
}

template <>
double sum_squares<Impl::omp>(std::size_t n, const float* X)
{
    return sum_squares_omp(n, X);
}

template <>
double sum_squares<Impl::omp>(std::size_t n, const bf16* X)
{
    return sum_squares_omp(n, X);
}

} // namespace ompml
