// Softmax + cross-entropy as an OpenMP target kernel: one thread per row (C is small: the
// number of classes), loss and correct count reduced across rows (loss in double, like ref).
// thread_limit(64): B rows are few work items (a batch), so smaller GPU teams spread them over
// more SMs; on host cores it is only an upper bound. The inner loops stay scalar: exp has no
// vector form without a vector math library, so `simd` there would fail to vectorize. With the
// gradient, each exp is computed once and kept in dlogits until the row's sum is known (the
// same values and sums as computing it twice).
#include "kernels/softmax_xent.hpp"

#include <cmath>

namespace ompml {

namespace {

// GRAD: whether dlogits is written; ROWS: whether row_loss is; decided once per call
// (decide_once, impl.hpp).
template <bool GRAD, bool ROWS>
XentStats xent_loop(int B, int C, const float* logits, const std::int32_t* labels, float scale, float* dlogits,
                    double* row_loss)
{
    double loss = 0.0;
    long long correct = 0;
    // logits: (B, C), labels: (B), dlogits: (B, C) or null
#pragma omp target teams distribute parallel for thread_limit(64) reduction(+ : loss, correct)                         \
    is_device_ptr(logits, labels, dlogits, row_loss) map(tofrom : loss, correct)
    for (int b = 0; b < B; ++b) {
        const float* z = logits + static_cast<long>(b) * C; // (C)
        int arg = 0;
        for (int c = 1; c < C; ++c)
            if (z[c] > z[arg]) arg = c;
        const float zmax = z[arg];
        const int y = labels[b];
        // z[y] read before d is written, so that dlogits may be logits itself, as before.
        const float zy = z[y];
        float* d = GRAD ? dlogits + static_cast<long>(b) * C : nullptr; // (C)
        float sum = 0.0f;
        if constexpr (GRAD) // each exp once, kept in d for the gradient
            for (int c = 0; c < C; ++c) sum += d[c] = std::exp(z[c] - zmax);
        else
            for (int c = 0; c < C; ++c) sum += std::exp(z[c] - zmax);
        const double row = static_cast<double>(std::log(sum) - (zy - zmax));
        loss += row;
        if constexpr (ROWS) row_loss[b] = row;
        correct += (arg == y);
        if constexpr (GRAD) {
            const float inv = scale / sum;
            for (int c = 0; c < C; ++c) d[c] = d[c] * inv - (c == y ? scale : 0.0f);
        }
    }
    return {loss, correct};
}

} // namespace

template <>
XentStats softmax_xent<Impl::omp>(int B, int C, const float* logits, const std::int32_t* labels, float scale,
                                  float* dlogits, double* row_loss)
{
    XentStats st;
    decide_once(dlogits != nullptr, [&](auto grad) {
        decide_once(row_loss != nullptr, [&](auto rows) {
            st =
                xent_loop<decltype(grad)::value, decltype(rows)::value>(B, C, logits, labels, scale, dlogits, row_loss);
        });
    });
    return st;
}

} // namespace ompml
