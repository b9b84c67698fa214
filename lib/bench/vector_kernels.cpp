// Bench records of the kernels over one vector of --len elements: the input normalisation, the
// vector kernels and the optimizer steps. All are bandwidth-bound. Counting rules and the
// record's fields: kernel.hpp.
#include "bench/anchor.hpp"
#include "bench/kernel.hpp"

namespace ompml::bench {
namespace {

// x: a Backend or an Anchor (the plain `parallel for` loop).
template <class X>
Prepared prepare_normalize_u8(X& x, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto in = upload(x, spread_bytes(len)); // (len) bytes
    auto out = alloc<float>(x, len);        // (len)
    return {[=, &x] { x.normalize_u8(len, in->data(), out->data(), 1.0f / 255.0f, -0.5f); }, outputs(out)};
}

Prepared prepare_fill(Backend& be, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto X = upload(be, random_floats(len, 9)); // (len)
    return {[=, &be] { be.fill(len, X->data(), 0.5f); }, outputs(X)};
}

Prepared prepare_sum_squares(Backend& be, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto X = upload(be, random_floats(len, 12)); // (len)
    auto s = std::make_shared<double>(0.0);
    return {[=, &be] { *s = be.sum_squares(len, X->data()); }, [=] { return Result{{*s}}; }};
}

Prepared prepare_sgd(Backend& be, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto W = upload(be, random_floats(len, 13)), G = upload(be, random_floats(len, 14)); // (len)
    auto M = upload(be, std::vector<float>(len, 0.0f));                                  // (len)
    const SgdStep s{0.01f, 0.9f, 1e-4f};
    return {[=, &be] { be.sgd_update(len, s, W->data(), G->data(), M->data()); }, outputs(W, M)};
}

Prepared prepare_adam(Backend& be, const Problem&, const Dims& d)
{
    const auto len = static_cast<std::size_t>(d.m);
    auto W = upload(be, random_floats(len, 15)), G = upload(be, random_floats(len, 16)); // (len)
    auto M = upload(be, std::vector<float>(len, 0.0f)), V = upload(be, std::vector<float>(len, 0.0f));
    AdamStep s;
    s.weight_decay = 1e-2f;
    s.decoupled = true;
    return {[=, &be] { be.adam_update(len, s, W->data(), G->data(), M->data(), V->data()); }, outputs(W, M, V)};
}

// One operation per element: a multiply-add fused on one side and not the other (the x86
// offload device is compiled without -march=native) is a rounding apart.
double one_rounding(const Dims&) { return 4 * kEps; }

} // namespace

std::vector<Kernel> vector_kernels()
{
    return {
        {.name = "normalize_u8",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 2.0 * d.m; },
         .bytes = [](const Dims& d) { return 5.0 * d.m; }, // 1 byte in, 4 out
         .tolerance = one_rounding,
         .prepare = prepare_normalize_u8<Backend>,
         .anchors = {"omp-parallel-for"},
         .prepare_anchor = prepare_normalize_u8<Anchor>},
        {.name = "fill",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims&) { return 0.0; },
         .bytes = [](const Dims& d) { return 4.0 * d.m; },
         .tolerance = [](const Dims&) { return 0.0; }, // a store: exact
         .prepare = prepare_fill},
        {.name = "sum_squares",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 2.0 * d.m; },
         .bytes = [](const Dims& d) { return 4.0 * d.m; },
         .tolerance = one_rounding, // summed in double on every side: only the order differs
         .prepare = prepare_sum_squares},
        {.name = "sgd",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 6.0 * d.m; },  // momentum + weight decay
         .bytes = [](const Dims& d) { return 20.0 * d.m; }, // W, G, M in; W, M out
         // the same inline body everywhere; contraction into FMA may differ by a rounding per
         // operation, a few operations
         .tolerance = [](const Dims&) { return 16 * kEps; },
         .prepare = prepare_sgd},
        {.name = "adam",
         .bound = Bound::bandwidth,
         .dims = vec,
         .flops = [](const Dims& d) { return 15.0 * d.m; },
         .bytes = [](const Dims& d) { return 28.0 * d.m; },  // W, G, M, V in; W, M, V out
         .tolerance = [](const Dims&) { return 16 * kEps; }, // as sgd (sqrt and divide correctly rounded)
         .prepare = prepare_adam},
    };
}

} // namespace ompml::bench
