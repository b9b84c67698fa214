// Bench records of a layer's kernels: gemm (forward and weight products), the activation's
// backward, col_sum (bias gradient) and softmax + cross-entropy (the loss). Counting rules and
// the record's fields: kernel.hpp.
#include "bench/anchor.hpp"
#include "bench/kernel.hpp"
#include "core/rng.hpp"

#include <algorithm>
#include <type_traits>

namespace ompml::bench {
namespace {

// x: a Backend or an Anchor (both have memory() and gemm with these arguments).
// --precision bf16: the inputs are rounded to bf16 values; a backend converts them once
// (Backend::convert, untimed) and the timed run is its bf16 gemm (float accumulation), checked
// against ref's bf16 gemm. An anchor stays an fp32 sgemm, on the same (bf16-valued, hence exactly
// representable) inputs: the same arithmetic, so it is checked against the same reference.
template <class X>
Prepared prepare_gemm(X& x, const Problem&, const Dims& d)
{
    const int m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
    const Gemm g{false, false, m, n, k, 1.0f, 0.0f, Act::identity};
    auto a = random_floats(std::size_t(m) * k, 1), b = random_floats(std::size_t(k) * n, 2);
    const bool bf16_in = d.precision == Precision::bf16;
    if (bf16_in)
        for (auto* v : {&a, &b})
            for (float& e : *v) e = to_float(to_bf16(e));
    auto A = upload(x, a);                        // (M, K)
    auto B = upload(x, b);                        // (K, N)
    auto C = alloc<float>(x, std::size_t(m) * n); // (M, N)
    if constexpr (std::is_same_v<X, Backend>) {
        if (bf16_in) {
            auto A16 = alloc<bf16>(x, a.size()), B16 = alloc<bf16>(x, b.size());
            x.convert(a.size(), A->data(), A16->data());
            x.convert(b.size(), B->data(), B16->data());
            x.synchronize();
            return {[=, &x] { x.gemm(g, A16->data(), B16->data(), C->data()); }, outputs(C)};
        }
    }
    return {[=, &x] { x.gemm(g, A->data(), B->data(), C->data()); }, outputs(C)};
}

template <Act act>
Prepared prepare_activation(Backend& be, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto Z = upload(be, random_floats(len, 3, -4.0f, 4.0f)), dY = upload(be, random_floats(len, 4)); // (len)
    auto dX = alloc<float>(be, len);                                                                 // (len)
    return {[=, &be] { be.activation_backward(act, len, Z->data(), dY->data(), dX->data()); }, outputs(dX)};
}

Prepared prepare_col_sum(Backend& be, const Problem&, const Dims& d)
{
    const int rows = static_cast<int>(d.m), cols = static_cast<int>(d.n);
    auto X = upload(be, random_floats(std::size_t(rows) * cols, 5)); // (rows, cols)
    auto out = alloc<float>(be, cols);                               // (cols)
    return {[=, &be] { be.col_sum(rows, cols, X->data(), out->data()); }, outputs(out)};
}

Prepared prepare_softmax_xent(Backend& be, const Problem&, const Dims& d)
{
    const int B = static_cast<int>(d.m), C = static_cast<int>(d.n);
    std::vector<std::int32_t> lab(static_cast<std::size_t>(B));
    const Rng rng(2024, 7);
    for (int i = 0; i < B; ++i) lab[i] = static_cast<std::int32_t>(rng.below(i, C));
    auto L = upload(be, random_floats(std::size_t(B) * C, 8, -6.0f, 6.0f)); // (B, C) logits
    auto Y = upload(be, lab);                                               // (B) labels
    auto dL = alloc<float>(be, std::size_t(B) * C);                         // (B, C)
    auto stats = std::make_shared<XentStats>();
    const float scale = 1.0f / static_cast<float>(B);
    return {[=, &be] { *stats = be.softmax_xent(B, C, L->data(), Y->data(), scale, dL->data()); },
            [=] { return Result{as_double(dL->to_vector()), {stats->loss_sum}, {double(stats->correct)}}; }};
}

// A reduction of n float terms against ref's double sum: 4 eps per term of the longest sum.
double per_term(double n) { return 4 * kEps * std::max(1.0, n); }

} // namespace

std::vector<Kernel> layer_kernels()
{
    return {
        {.name = "gemm",
         .bound = Bound::flops,
         .dims = mnk,
         .flops = [](const Dims& d) { return 2.0 * d.m * d.n * d.k; }, // a multiply and an add per m*n*k
         // A and B in 2 bytes each for bf16 (the anchors read them as fp32 all the same)
         .bytes =
             [](const Dims& d) {
                 const double in = d.precision == Precision::bf16 ? 2.0 : 4.0;
                 return in * (double(d.m) * d.k + double(d.k) * d.n) + 4.0 * double(d.m) * d.n;
             },
         // k products summed in float against a double sum; a multiply-add fused on one side
         // and not the other is a rounding apart. bf16: the products of bf16 values are exact in
         // float, so the same float-summation bound holds against ref's bf16 gemm.
         .tolerance = [](const Dims& d) { return per_term(d.k); },
         .prepare = prepare_gemm<Backend>,
         .anchors = {"openblas", "cublas"},
         .prepare_anchor = prepare_gemm<Anchor>,
         .takes_precision = true},
        {.name = "activation_relu",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 1.0 * d.m; },  // dX = dY * (Z > 0)
         .bytes = [](const Dims& d) { return 12.0 * d.m; }, // Z, dY in, dX out
         // one operation: a multiply-add fused on one side and not the other (the x86
         // offload device is compiled without -march=native) is a rounding apart
         .tolerance = [](const Dims&) { return 4 * kEps; },
         .prepare = prepare_activation<Act::relu>},
        {.name = "activation_gelu",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 14.0 * d.m; }, // tanh form of GELU's derivative
         .bytes = [](const Dims& d) { return 12.0 * d.m; },
         // tanh from different math libraries (host libm, device libm): a few ulp, amplified
         // by the derivative's dozen operations
         .tolerance = [](const Dims&) { return 64 * kEps; },
         .prepare = prepare_activation<Act::gelu>},
        {.name = "col_sum",
         .bound = Bound::bandwidth,
         .dims = rows_cols,
         .flops = [](const Dims& d) { return 1.0 * d.m * d.n; },
         .bytes = [](const Dims& d) { return 4.0 * d.m * d.n + 4.0 * d.n; }, // X in, out (cols) out
         .tolerance = [](const Dims& d) { return per_term(d.m); },           // a float sum over rows
         .prepare = prepare_col_sum},
        {.name = "softmax_xent",
         .bound = Bound::bandwidth,
         .dims = rows_cols,
         .flops = [](const Dims& d) { return 6.0 * d.m * d.n; },
         .bytes = [](const Dims& d) { return 8.0 * d.m * d.n + 4.0 * d.m; }, // logits in, dlogits out, labels
         // per row a float sum of n exponentials (and its log) against double
         .tolerance = [](const Dims& d) { return 2 * per_term(d.n); },
         .prepare = prepare_softmax_xent},
    };
}

} // namespace ompml::bench
