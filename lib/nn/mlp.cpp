// Mlp<T, G> (mlp.hpp): forward with the bias and activation fused into each gemm's epilogue,
// fused softmax cross-entropy, then per layer dW = dZ^T X, db = colsum(dZ) and dX = dZ W with the
// activation backward fused in. One body for every precision; instantiated at the end of the file.
#include "nn/mlp.hpp"

#include "core/check.hpp"
#include "core/trace.hpp"

#include <type_traits>
#include <utility>

namespace ompml {

template <class T, class G>
Mlp<T, G>::Mlp(Backend& be, const MlpConfig& cfg, int max_batch, const MemorySpace& grad_memory, BatchTree tree)
    : Model(be, cfg, max_batch), tree_(tree)
{
    require(tree.chunks == 0 || (tree.ranks >= 1 && tree.chunks % tree.ranks == 0),
            "MLP: " + std::to_string(tree.ranks) + " ranks do not divide the " + std::to_string(tree.chunks) +
                " chunks of the summation tree");
    const MemorySpace& mem = be.memory();
    const std::size_t rows = static_cast<std::size_t>(max_batch);
    std::size_t bytes = float_side_bytes(keeps_pre()) + num_params_ * sizeof(G);
    for (int l = 0; l + 1 < num_layers(); ++l) bytes += rows * views_[l].out * sizeof(T);
    bytes += (num_params_ + rows * (inputs() + widest_)) * OperandCopy<T>::bytes_per_element;
    if (tree.chunks > 0) bytes += rows * sizeof(double);
    try {
        // The gradient first: its memory may be a node's shared window, whose allocation is
        // collective, so every rank reaches it before anything that may fail on one rank only.
        grad_ = DeviceBuffer<G>(grad_memory, num_params_);
        allocate_float_side(keeps_pre());
        wcopy_ = OperandCopy<T>(mem, num_params_);
        xcopy_ = OperandCopy<T>(mem, rows * inputs());
        dzcopy_ = OperandCopy<T>(mem, rows * widest_);
        for (int l = 0; l + 1 < num_layers(); ++l) hidden_.emplace_back(mem, rows * views_[l].out);
        if (tree.chunks > 0) row_loss_ = DeviceBuffer<double>(mem, rows);
    } catch (const std::exception& e) { // Error from the device, or bad_alloc on the host
        allocation_failed(bytes, e);
    }
    be.fill(num_params_, grad_.data(), 0.0f);
    params_changed();
}

template <class T, class G>
void Mlp<T, G>::params_changed()
{
    wcopy_.refresh(be_, params_.data(), num_params_);
}

template <class T, class G>
const float* Mlp<T, G>::forward(const float* X, int B, bool store_pre)
{
    require(B >= 0 && B <= max_batch_,
            "MLP forward: batch of " + std::to_string(B) + " rows exceeds max_batch " + std::to_string(max_batch_));
    if (B == 0) return logits_.data();
    const T* in = xcopy_.from(be_, X, static_cast<std::size_t>(B) * inputs()); // (B, IN)
    x_op_ = in;
    const T* W = wcopy_.view(params_.data());
    for (int l = 0; l < num_layers(); ++l) {
        const trace::Span span("forward", trace::device, l);
        const LayerView& v = views_[l];
        Gemm g;
        g.trans_b = true; // Y (B, OUT) = X (B, IN) W^T, W stored (OUT, IN)
        g.m = B;
        g.n = v.out;
        g.k = v.in;
        const float* bias = params_.data() + v.b;
        if (l + 1 == num_layers()) { // the logits, in float
            be_.gemm(g, in, W + v.w, logits_.data(), bias);
            break;
        }
        g.act = cfg_.activation;
        T* out = hidden_[l].data(); // (B, OUT)
        float* pre = store_pre && keeps_pre() ? pre_[l].data() : nullptr;
        be_.gemm(g, in, W + v.w, out, bias, pre);
        in = out;
    }
    return logits_.data(); // (B, C)
}

template <class T, class G>
XentStats Mlp<T, G>::loss_backward(const std::int32_t* Y, int B, int global_rows, const GradReadyFn& on_grads)
{
    const int L = num_layers();
    if (B == 0) {
        be_.fill(num_params_, grad_.data(), 0.0f);
        for (int l = L - 1; l >= 0; --l)
            if (on_grads) on_grads(l, views_[l]);
        return {};
    }
    const KChunks kc = tree_.of(global_rows); // off: one in-order sum over the rows
    float* dZ = dA_.data();                   // (B, OUT) of the current layer
    float* dNext = dB_.data();                // (B, IN) of the current layer
    XentStats st;
    {
        const trace::Span span("loss", trace::device);
        st = be_.softmax_xent(B, classes(), logits_.data(), Y, 1.0f / static_cast<float>(global_rows), dZ,
                              row_loss_.data());
        if (kc.chunks > 0) st.loss_sum = chunk_tree_loss(kc);
    }
    const T* W = wcopy_.view(params_.data());
    for (int l = L - 1; l >= 0; --l) {
        const trace::Span span("backward", trace::device, l);
        const LayerView& v = views_[l];
        const T* in = l == 0 ? x_op_ : hidden_[l - 1].data(); // (B, IN)
        const T* dz = dzcopy_.from(be_, dZ, static_cast<std::size_t>(B) * v.out);
        // dW (OUT, IN) = dZ^T (OUT, B) X (B, IN); dZ is stored (B, OUT), hence trans_a.
        Gemm gw;
        gw.trans_a = true;
        gw.m = v.out;
        gw.n = v.in;
        gw.k = B;
        gw.kc = kc;
        be_.gemm(gw, dz, in, grad_.data() + v.w);
        be_.col_sum(B, v.out, dZ, grad_.data() + v.b, kc); // db (OUT)
        // The layer's bucket is final: the ranks may start summing it while dX runs.
        if (on_grads) on_grads(l, v);
        if (l == 0) break;
        // dX (B, IN) = (dZ (B, OUT) W (OUT, IN)) * act'(Z of the previous layer), one gemm.
        Gemm gx;
        gx.m = B;
        gx.n = v.in;
        gx.k = v.out;
        gx.act = cfg_.activation;
        gx.act_backward = true;
        be_.gemm(gx, dz, W + v.w, dNext, nullptr, backward_pre(l - 1));
        std::swap(dZ, dNext);
    }
    return st;
}

template <class T, class G>
bool Mlp<T, G>::keeps_pre() const
{
    return !std::is_same_v<T, float> || cfg_.activation != Act::relu;
}

template <class T, class G>
float* Mlp<T, G>::backward_pre(int l)
{
    if constexpr (std::is_same_v<T, float>)
        if (!keeps_pre()) return hidden_[l].data();
    return pre_[l].data();
}

template <class T, class G>
double Mlp<T, G>::chunk_tree_loss(const KChunks& kc) const
{
    std::vector<double> rows(static_cast<std::size_t>(chunk_row(kc, kc.count))); // (B)
    be_.memory().to_host(rows.data(), row_loss_.data(), rows.size() * sizeof(double));
    TreeSum<double> t;
    for (int c = 0; c < kc.count; ++c) {
        double s = 0.0;
        for (long r = chunk_row(kc, c); r < chunk_row(kc, c + 1); ++r) s += rows[static_cast<std::size_t>(r)];
        t.add(s);
    }
    return t.total();
}

template class Mlp<float, float>;
template class Mlp<float, bf16>;
template class Mlp<bf16, float>;
template class Mlp<bf16, bf16>;

} // namespace ompml
