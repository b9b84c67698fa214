// Softmax + cross-entropy, sequential reference (double arithmetic per row).
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
    XentStats st;
    for (int b = 0; b < B; ++b) {
        const float* z = logits + static_cast<long>(b) * C;
        int arg = 0;
        for (int c = 1; c < C; ++c)
            if (z[c] > z[arg]) arg = c;
        double sum = 0.0;
        for (int c = 0; c < C; ++c) sum += std::exp(static_cast<double>(z[c]) - z[arg]);
        const int y = labels[b];
        const double row = std::log(sum) - (static_cast<double>(z[y]) - z[arg]);
        st.loss_sum += row;
        if constexpr (ROWS) row_loss[b] = row;
        st.correct += (arg == y);
        if constexpr (GRAD)
            for (int c = 0; c < C; ++c) {
                const double p = std::exp(static_cast<double>(z[c]) - z[arg]) / sum;
                dlogits[static_cast<long>(b) * C + c] = static_cast<float>(scale * (p - (c == y ? 1.0 : 0.0)));
            }
    }
    return st;
}

} // namespace

template <>
XentStats softmax_xent<Impl::ref>(int B, int C, const float* logits, const std::int32_t* labels, float scale,
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
