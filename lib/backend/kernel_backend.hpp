// KernelBackend<I>: the Backend over the kernels' Impl I specialisations. Validation lives
// here, once for all backends; each backend file only supplies memory and device facts. Each
// element-type variant of a kernel is one line over one checked template.
#pragma once

#include "backend/backend.hpp"
#include "core/check.hpp"
#include "kernels/blas1.hpp"
#include "kernels/convert.hpp"
#include "kernels/normalize.hpp"
#include "kernels/reduce.hpp"

#include <string>

namespace ompml {

namespace detail {
inline void require_positive(const char* op, const char* what, long long v)
{
    require(v >= 1, std::string(op) + ": " + what + " = " + std::to_string(v) + ", must be >= 1");
}
inline void require_pointer(const char* op, const char* what, const void* p)
{
    require(p != nullptr, std::string(op) + ": " + what + " is null");
}
} // namespace detail

template <Impl I>
class KernelBackend : public Backend {
public:
    const char* name() const override { return impl_name(I); }

    void gemm(const Gemm& g, const float* A, const float* B, float* C, const float* bias, float* pre) override
    {
        checked_gemm(g, A, B, C, bias, pre);
    }
    void gemm(const Gemm& g, const float* A, const float* B, bf16* C, const float* bias, float* pre) override
    {
        checked_gemm(g, A, B, C, bias, pre);
    }
    void gemm(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias, float* pre) override
    {
        checked_gemm(g, A, B, C, bias, pre);
    }
    void gemm(const Gemm& g, const bf16* A, const bf16* B, bf16* C, const float* bias, float* pre) override
    {
        checked_gemm(g, A, B, C, bias, pre);
    }
    void convert(std::size_t n, const float* X, bf16* Y) override { checked_convert(n, X, Y); }
    void convert(std::size_t n, const bf16* X, float* Y) override { checked_convert(n, X, Y); }
    void activation_backward(Act act, std::size_t n, const float* Z, const float* dY, float* dX) override
    {
        if (n == 0) return;
        detail::require_pointer("activation_backward", "Z", Z);
        detail::require_pointer("activation_backward", "dY", dY);
        detail::require_pointer("activation_backward", "dX", dX);
        ompml::activation_backward<I>(act, n, Z, dY, dX);
    }
    void col_sum(int rows, int cols, const float* X, float* out, const KChunks& kc) override
    {
        checked_col_sum(rows, cols, X, out, kc);
    }
    void col_sum(int rows, int cols, const float* X, bf16* out, const KChunks& kc) override
    {
        checked_col_sum(rows, cols, X, out, kc);
    }
    XentStats softmax_xent(int B, int C, const float* logits, const std::int32_t* labels, float scale, float* dlogits,
                           double* row_loss) override
    {
        detail::require_positive("softmax_xent", "batch", B);
        detail::require_positive("softmax_xent", "classes", C);
        detail::require_pointer("softmax_xent", "logits", logits);
        detail::require_pointer("softmax_xent", "labels", labels);
        return ompml::softmax_xent<I>(B, C, logits, labels, scale, dlogits, row_loss);
    }
    void normalize_u8(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift) override
    {
        if (n == 0) return;
        detail::require_pointer("normalize_u8", "X", X);
        detail::require_pointer("normalize_u8", "Y", Y);
        ompml::normalize_u8<I>(n, X, Y, scale, shift);
    }
    void fill(std::size_t n, float* X, float value) override { checked_fill(n, X, value); }
    void fill(std::size_t n, bf16* X, float value) override { checked_fill(n, X, value); }
    double sum_squares(std::size_t n, const float* X) override { return checked_sum_squares(n, X); }
    double sum_squares(std::size_t n, const bf16* X) override { return checked_sum_squares(n, X); }
    void sgd_update(std::size_t n, const SgdStep& s, float* W, const float* G, float* M, bf16* W16) override
    {
        checked_sgd(n, s, W, G, M, W16);
    }
    void sgd_update(std::size_t n, const SgdStep& s, float* W, const bf16* G, float* M, bf16* W16) override
    {
        checked_sgd(n, s, W, G, M, W16);
    }
    void adam_update(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V, bf16* W16) override
    {
        checked_adam(n, s, W, G, M, V, W16);
    }
    void adam_update(std::size_t n, const AdamStep& s, float* W, const bf16* G, float* M, float* V, bf16* W16) override
    {
        checked_adam(n, s, W, G, M, V, W16);
    }

private:
    template <class T, class O> // T: the operands' type, O: the output's (float or bf16)
    static void checked_gemm(const Gemm& g, const T* A, const T* B, O* C, const float* bias, float* pre)
    {
        detail::require_positive("gemm", "m", g.m);
        detail::require_positive("gemm", "n", g.n);
        detail::require_positive("gemm", "k", g.k);
        detail::require_pointer("gemm", "A", A);
        detail::require_pointer("gemm", "B", B);
        detail::require_pointer("gemm", "C", C);
        // A bf16 output is written, never read: beta * C would add a value already rounded.
        require(sizeof(O) == sizeof(float) || g.beta == 0.0f,
                "gemm: beta = " + std::to_string(g.beta) + " with a bf16 output C: only beta 0 writes bf16");
        if (g.act_backward) {
            detail::require_pointer("gemm (activation backward)", "pre", pre);
            require(bias == nullptr, "gemm (activation backward): bias must be null");
        }
        if (g.kc.chunks > 0) {
            // The weight gradient's product: K the rows of both stored operands, a plain epilogue.
            require(g.trans_a && !g.trans_b && g.beta == 0.0f && bias == nullptr && pre == nullptr &&
                        g.act == Act::identity && !g.act_backward,
                    "gemm with K in chunks: only trans_a, not trans_b, beta 0, no bias, no pre, identity");
            check_chunks("gemm", g.kc, g.k);
        }
        ompml::gemm<I>(g, A, B, C, bias, pre);
    }
    template <class X, class Y>
    static void checked_convert(std::size_t n, const X* x, Y* y)
    {
        if (n == 0) return;
        detail::require_pointer("convert", "X", x);
        detail::require_pointer("convert", "Y", y);
        ompml::convert<I>(n, x, y);
    }
    template <class O>
    static void checked_col_sum(int rows, int cols, const float* X, O* out, const KChunks& kc)
    {
        detail::require_positive("col_sum", "rows", rows);
        detail::require_positive("col_sum", "cols", cols);
        detail::require_pointer("col_sum", "X", X);
        detail::require_pointer("col_sum", "out", out);
        if (kc.chunks > 0) check_chunks("col_sum", kc, rows);
        ompml::col_sum<I>(rows, cols, X, out, kc);
    }
    // K (or the rows) must be exactly the chunks [first, first + count) of the batch.
    static void check_chunks(const char* op, const KChunks& kc, long rows)
    {
        require(kc.count >= 1 && kc.first >= 0 && kc.first + kc.count <= kc.chunks && kc.rows >= 0,
                std::string(op) + ": chunks [" + std::to_string(kc.first) + ", " + std::to_string(kc.first + kc.count) +
                    ") of " + std::to_string(kc.chunks) + " is not a range");
        require(chunk_row(kc, kc.count) == rows,
                std::string(op) + ": " + std::to_string(rows) + " rows, but the chunks hold " +
                    std::to_string(chunk_row(kc, kc.count)));
    }
    template <class T>
    static void checked_fill(std::size_t n, T* X, float value)
    {
        if (n == 0) return;
        detail::require_pointer("fill", "X", X);
        ompml::fill<I>(n, X, value);
    }
    template <class T> // the element type of X or G: float or bf16
    static double checked_sum_squares(std::size_t n, const T* X)
    {
        if (n == 0) return 0.0;
        detail::require_pointer("sum_squares", "X", X);
        return ompml::sum_squares<I>(n, X);
    }
    template <class T>
    static void checked_sgd(std::size_t n, const SgdStep& s, float* W, const T* G, float* M, bf16* W16)
    {
        if (n == 0) return;
        detail::require_pointer("sgd_update", "W", W);
        detail::require_pointer("sgd_update", "G", G);
        detail::require_pointer("sgd_update", "M", M);
        ompml::sgd_update<I>(n, s, W, G, M, W16);
    }
    template <class T>
    static void checked_adam(std::size_t n, const AdamStep& s, float* W, const T* G, float* M, float* V, bf16* W16)
    {
        if (n == 0) return;
        detail::require_positive("adam_update", "t", s.t);
        detail::require_pointer("adam_update", "W", W);
        detail::require_pointer("adam_update", "G", G);
        detail::require_pointer("adam_update", "M", M);
        detail::require_pointer("adam_update", "V", V);
        ompml::adam_update<I>(n, s, W, G, M, V, W16);
    }
};

} // namespace ompml
