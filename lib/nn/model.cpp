// Model (model.hpp): the layout, the float side's buffers and the precision-independent calls.
#include "nn/model.hpp"

#include "core/check.hpp"
#include "core/rng.hpp"
#include "core/trace.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

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

Model::Model(Backend& be, const MlpConfig& cfg, int max_batch) : be_(be), cfg_(cfg), max_batch_(max_batch)
{
    require(cfg.layers.size() >= 2, "MLP needs at least 2 widths, got " + layers_string(cfg.layers));
    require(max_batch >= 1, "MLP max_batch must be >= 1, got " + std::to_string(max_batch));
    require(cfg.activation != Act::identity, "MLP hidden activation must be relu, tanh or gelu");
    views_ = mlp_layout(cfg.layers);
    num_params_ = views_.back().b + static_cast<std::size_t>(views_.back().out);
    for (const LayerView& v : views_) widest_ = std::max(widest_, v.out);
}

std::size_t Model::float_side_bytes(bool pre) const
{
    const std::size_t rows = static_cast<std::size_t>(max_batch_);
    std::size_t floats = num_params_ + rows * classes() + 2 * rows * widest_;
    if (pre)
        for (int l = 0; l + 1 < num_layers(); ++l) floats += rows * views_[l].out;
    return floats * sizeof(float);
}

void Model::allocate_float_side(bool pre)
{
    const MemorySpace& mem = be_.memory();
    const std::size_t rows = static_cast<std::size_t>(max_batch_);
    params_ = DeviceBuffer<float>(mem, num_params_);
    logits_ = DeviceBuffer<float>(mem, rows * classes());
    if (pre)
        for (int l = 0; l + 1 < num_layers(); ++l) pre_.emplace_back(mem, rows * views_[l].out);
    dA_ = DeviceBuffer<float>(mem, rows * widest_);
    dB_ = DeviceBuffer<float>(mem, rows * widest_);
    be_.fill(num_params_, params_.data(), 0.0f);
}

void Model::allocation_failed(std::size_t bytes, const std::exception& e) const
{
    throw Error("model " + layers_string(cfg_.layers) + " (" + std::to_string(num_params_) + " parameters, batch " +
                std::to_string(max_batch_) + "): cannot allocate its " + bytes_text(bytes) + " of " +
                be_.memory().name() + " memory: " + e.what());
}

void Model::init_params(std::uint64_t seed)
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
    upload_params(host);
}

double Model::train_flops_per_row() const
{
    double f = 0.0;
    for (std::size_t l = 0; l < views_.size(); ++l) f += (l == 0 ? 4.0 : 6.0) * views_[l].in * views_[l].out;
    return f;
}

std::vector<float> Model::download_params() const { return params_.to_vector(); }

void Model::upload_params(const std::vector<float>& host)
{
    require(host.size() == num_params_,
            "MLP parameters: got " + std::to_string(host.size()) + " values, the model " + layers_string(cfg_.layers) +
                " has " + std::to_string(num_params_));
    params_.upload(host);
    params_changed();
}

XentStats Model::loss(const std::int32_t* Y, int B)
{
    if (B == 0) return {};
    const trace::Span span("loss", trace::device);
    return be_.softmax_xent(B, classes(), logits_.data(), Y, 1.0f, nullptr);
}

} // namespace ompml
