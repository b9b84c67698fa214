// MLP forward/backward over the Backend: gemm with a fused bias + activation epilogue forward,
// fused softmax cross-entropy, then per layer dW = dZ^T X, db = colsum(dZ), dX = dZ W; in bf16,
// the same calls on the bf16 copies (Mlp::gemm picks the overload).
#include "nn/mlp.hpp"

#include "core/check.hpp"
#include "core/rng.hpp"
#include "core/trace.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

namespace ompml {

std::vector<int> parse_layers(const std::string& s, const char* what)
{
    std::vector<int> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        std::size_t used = 0;
        long v = 0;
        try {
            v = std::stol(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size() || v < 1 || v > (1 << 24))
            throw Error(std::string(what) + " '" + s + "': entry '" + item + "' is not a positive width");
        out.push_back(static_cast<int>(v));
    }
    if (out.size() < 2 || (!s.empty() && s.back() == ','))
        throw Error(std::string(what) + " '" + s + "': need at least an input and an output width, e.g. 784,10");
    return out;
}

std::string layers_string(const std::vector<int>& layers)
{
    std::string s;
    for (std::size_t i = 0; i < layers.size(); ++i) s += (i ? "," : "") + std::to_string(layers[i]);
    return s;
}

std::vector<LayerView> mlp_layout(const std::vector<int>& layers)
{
    require(layers.size() >= 2, "MLP needs at least 2 widths, got " + layers_string(layers));
    std::vector<LayerView> views;
    std::size_t next = 0;
    for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
        LayerView v;
        v.in = layers[l];
        v.out = layers[l + 1];
        require(v.in >= 1 && v.out >= 1, "MLP widths must be >= 1: " + layers_string(layers));
        v.w = next;
        v.b = v.w + static_cast<std::size_t>(v.out) * v.in;
        next = v.b + static_cast<std::size_t>(v.out);
        views.push_back(v);
    }
    return views;
}

Mlp::Mlp(Backend& be, const MlpConfig& cfg, int max_batch) : be_(be), cfg_(cfg), max_batch_(max_batch)
{
    require(cfg.layers.size() >= 2, "MLP needs at least 2 widths, got " + layers_string(cfg.layers));
    require(max_batch >= 1, "MLP max_batch must be >= 1, got " + std::to_string(max_batch));
    require(cfg.activation != Act::identity, "MLP hidden activation must be relu, tanh or gelu");
    views_ = mlp_layout(cfg.layers);
    num_params_ = views_.back().b + static_cast<std::size_t>(views_.back().out);
    int widest = 1;
    for (const LayerView& v : views_) widest = std::max(widest, v.out);
    const MemorySpace& mem = be.memory();
    const std::size_t rows = static_cast<std::size_t>(max_batch);
    std::size_t floats = 2 * num_params_ + 2 * rows * widest; // what the buffers below take
    for (int l = 0; l < num_layers(); ++l) floats += (l + 1 < num_layers() ? 2 : 1) * rows * views_[l].out;
    if (mixed()) { // bf16 copies: half a float each
        std::size_t halves = num_params_ + rows * (cfg.layers.front() + widest);
        for (int l = 0; l + 1 < num_layers(); ++l) halves += rows * views_[l].out;
        floats += (halves + 1) / 2;
    }
    try {
        params_ = DeviceBuffer<float>(mem, num_params_);
        grads_ = DeviceBuffer<float>(mem, num_params_);
        for (int l = 0; l < num_layers(); ++l) {
            const std::size_t n = rows * static_cast<std::size_t>(views_[l].out);
            acts_.emplace_back(mem, n);
            pre_.emplace_back(mem, l + 1 < num_layers() ? n : 0); // the last layer has no activation
        }
        dA_ = DeviceBuffer<float>(mem, rows * widest);
        dB_ = DeviceBuffer<float>(mem, rows * widest);
        if (mixed()) {
            params16_ = DeviceBuffer<bf16>(mem, num_params_);
            x16_ = DeviceBuffer<bf16>(mem, rows * cfg.layers.front());
            dZ16_ = DeviceBuffer<bf16>(mem, rows * widest);
            for (int l = 0; l + 1 < num_layers(); ++l) acts16_.emplace_back(mem, rows * views_[l].out);
        }
    } catch (const std::exception& e) { // Error from the device, or bad_alloc on the host
        throw Error("model " + layers_string(cfg.layers) + " (" + std::to_string(num_params_) + " parameters, batch " +
                    std::to_string(max_batch) + "): cannot allocate its " + bytes_text(floats * sizeof(float)) +
                    " of " + mem.name() + " memory: " + e.what());
    }
    be.fill(num_params_, params_.data(), 0.0f);
    refresh_params16();
    grad_ = grads_.data();
    be.fill(num_params_, grad_, 0.0f);
}

void Mlp::init_params(std::uint64_t seed)
{
    std::vector<float> host(num_params_, 0.0f); // biases stay zero
    for (int l = 0; l < num_layers(); ++l) {
        const LayerView& v = views_[l];
        // He: sqrt(2 / IN) (relu, gelu). Xavier/Glorot normal: sqrt(2 / (IN + OUT)) (tanh).
        const double sd = cfg_.activation == Act::tanh ? std::sqrt(2.0 / (v.in + v.out)) : std::sqrt(2.0 / v.in);
        const Rng rng(seed, 1000 + static_cast<std::uint64_t>(l));
        const std::size_t n = static_cast<std::size_t>(v.out) * v.in;
        for (std::size_t i = 0; i < n; ++i) host[v.w + i] = static_cast<float>(sd) * rng.normal(i);
    }
    params_.upload(host);
    refresh_params16();
}

void Mlp::refresh_params16()
{
    if (mixed()) be_.convert(num_params_, params_.data(), params16_.data());
}

void Mlp::gemm(const Gemm& g, const float* A, const bf16* A16, const float* B, const bf16* B16, float* C,
               const float* bias, float* pre, bf16* C16)
{
    if (mixed())
        be_.gemm(g, A16, B16, C, bias, pre, C16);
    else
        be_.gemm(g, A, B, C, bias, pre, C16);
}

void Mlp::use_grad_buffer(float* G)
{
    require(G != nullptr, "Mlp::use_grad_buffer: null gradient buffer");
    if (G == grad_) return;
    grad_ = G;
    grads_ = DeviceBuffer<float>();
}

double Mlp::train_flops_per_row() const
{
    double f = 0.0;
    for (std::size_t l = 0; l < views_.size(); ++l) f += (l == 0 ? 4.0 : 6.0) * views_[l].in * views_[l].out;
    return f;
}

std::vector<float> Mlp::download_params() const { return params_.to_vector(); }

void Mlp::upload_params(const std::vector<float>& host)
{
    require(host.size() == num_params_,
            "MLP parameters: got " + std::to_string(host.size()) + " values, the model " + layers_string(cfg_.layers) +
                " has " + std::to_string(num_params_));
    params_.upload(host);
    refresh_params16();
}

const float* Mlp::forward(const float* X, int B, bool store_pre)
{
    require(B >= 0 && B <= max_batch_,
            "MLP forward: batch of " + std::to_string(B) + " rows exceeds max_batch " + std::to_string(max_batch_));
    if (B == 0) return acts_.back().data();
    const float* in = X;        // (B, IN)
    const bf16* in16 = nullptr; // its bf16 copy (bf16 only)
    if (mixed()) {
        be_.convert(static_cast<std::size_t>(B) * inputs(), X, x16_.data());
        in16 = x16_.data();
    }
    for (int l = 0; l < num_layers(); ++l) {
        const trace::Span span("forward", trace::device, l);
        const LayerView& v = views_[l];
        const bool hidden = l + 1 < num_layers();
        Gemm g;
        g.trans_b = true; // Y (B, OUT) = X (B, IN) W^T, W stored (OUT, IN)
        g.m = B;
        g.n = v.out;
        g.k = v.in;
        g.act = hidden ? cfg_.activation : Act::identity;
        float* out = acts_[l].data();                                  // (B, OUT)
        bf16* out16 = mixed() && hidden ? acts16_[l].data() : nullptr; // (B, OUT)
        gemm(g, in, in16, params_.data() + v.w, params16_.data() + v.w, out, params_.data() + v.b,
             hidden && store_pre ? pre_[l].data() : nullptr, out16);
        in = out;
        in16 = out16;
    }
    return acts_.back().data(); // (B, C)
}

XentStats Mlp::loss(const std::int32_t* Y, int B)
{
    if (B == 0) return {};
    const trace::Span span("loss", trace::device);
    return be_.softmax_xent(B, classes(), acts_.back().data(), Y, 1.0f, nullptr);
}

XentStats Mlp::loss_backward(const float* X, const std::int32_t* Y, int B, float scale, const GradReadyFn& on_grads)
{
    const int L = num_layers();
    if (B == 0) {
        be_.fill(num_params_, grad_, 0.0f);
        if (grad16_ != nullptr) be_.convert(num_params_, grad_, grad16_);
        for (int l = L - 1; l >= 0; --l)
            if (on_grads) on_grads(l, views_[l]);
        return {};
    }
    float* dZ = dA_.data();    // (B, OUT) of the current layer
    float* dNext = dB_.data(); // (B, IN) of the current layer
    XentStats st;
    {
        const trace::Span span("loss", trace::device);
        st = be_.softmax_xent(B, classes(), acts_.back().data(), Y, scale, dZ);
    }
    for (int l = L - 1; l >= 0; --l) {
        const trace::Span span("backward", trace::device, l);
        const LayerView& v = views_[l];
        const float* in = l == 0 ? X : acts_[l - 1].data(); // (B, IN)
        const bf16* in16 = !mixed() ? nullptr : l == 0 ? x16_.data() : acts16_[l - 1].data();
        if (mixed()) be_.convert(static_cast<std::size_t>(B) * v.out, dZ, dZ16_.data());
        // dW (OUT, IN) = dZ^T (OUT, B) X (B, IN); dZ is stored (B, OUT), hence trans_a.
        Gemm gw;
        gw.trans_a = true;
        gw.m = v.out;
        gw.n = v.in;
        gw.k = B;
        // With a bf16 gradient the float dW is not needed: C16 alone.
        gemm(gw, dZ, dZ16_.data(), in, in16, grad16_ ? nullptr : grad_ + v.w, nullptr, nullptr,
             grad16_ ? grad16_ + v.w : nullptr);
        be_.col_sum(B, v.out, dZ, grad_ + v.b, 0.0f); // db (OUT)
        if (grad16_ != nullptr) be_.convert(static_cast<std::size_t>(v.out), grad_ + v.b, grad16_ + v.b);
        // The layer's bucket is final: the MPI layer may start averaging it while dX runs.
        if (on_grads) on_grads(l, v);
        if (l == 0) break;
        // dX (B, IN) = dZ (B, OUT) W (OUT, IN), then through the previous layer's activation.
        Gemm gx;
        gx.m = B;
        gx.n = v.in;
        gx.k = v.out;
        gemm(gx, dZ, dZ16_.data(), params_.data() + v.w, params16_.data() + v.w, dNext);
        be_.activation_backward(cfg_.activation, static_cast<std::size_t>(B) * v.in, pre_[l - 1].data(), dNext, dNext);
        std::swap(dZ, dNext);
    }
    return st;
}

} // namespace ompml
