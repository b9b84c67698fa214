// MLP: a stack of Linear layers with a hidden activation (relu | tanh | gelu); the last layer
// is the identity and produces logits for softmax cross-entropy.
//
// Memory layout (the project's invariant: training stays on the device, in flat buffers): ONE
// flat parameter buffer and ONE flat gradient buffer of the same layout, on the device. Layer l
// occupies a contiguous range:
//     W_l (OUT, IN) row-major, like PyTorch's nn.Linear.weight, then b_l (OUT)
// so a layer's gradient is one contiguous bucket (what the MPI layer averages). Activations,
// pre-activations and backward scratch are device buffers sized for max_batch rows, allocated
// once in the constructor; forward/backward never allocate.
//
// Mixed precision (MlpConfig::precision = bf16): the gemms read bf16 copies and accumulate in
// float. The copies: the weights (params16(), the layout of params(); refreshed by the
// optimizer step in the same pass, and by init/upload), the input batch (converted once per
// forward), each hidden layer's output (written by its gemm's epilogue) and each layer's
// output gradient dZ (converted before its two backward gemms). Everything else stays float:
// master weights, gradients, optimizer state, pre-activations, logits, softmax and loss.
//
// Compressed gradients (use_grad16_buffer, --grad-dtype bf16 on several ranks): backward writes
// the gradient in bf16 for the ranks to exchange as it is: the weight gradients straight from
// the dW gemm's epilogue (in bf16 only: the float buffer then holds just the bias gradients),
// the bias gradients by a conversion of their float sums.
//
// Init (init_params): computed on the host from the seed with ompml::Rng and uploaded once.
//   weights ~ N(0, std^2): He std = sqrt(2 / IN) for relu and gelu, Xavier (Glorot normal)
//   std = sqrt(2 / (IN + OUT)) for tanh; biases are zero. Layer l draws stream (1000 + l), so
//   the values do not depend on the other layers' sizes.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/enum_names.hpp"
#include "core/precision.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ompml {

struct MlpConfig {
    std::vector<int> layers{784, 512, 256, 10}; // widths: input, hidden..., classes
    Act activation = Act::relu;                 // hidden layers; the last layer is identity
    // bf16: the gemms read bf16 copies of the weights and of each layer's input, and
    // accumulate in float; params() stay the fp32 master weights (see Mlp).
    Precision precision = Precision::fp32;
};

// Hidden activations by name (parse_enum<Act>, enum_name; core/enum_names.hpp). identity is
// the last layer's and no hidden choice, so it has no name here.
template <>
struct EnumNames<Act> {
    static constexpr const char* what = "activation";
    static constexpr std::pair<Act, const char*> names[] = {
        {Act::relu, "relu"}, {Act::tanh, "tanh"}, {Act::gelu, "gelu"}};
};

// "784,512,256,10" <-> widths; parse throws Error on an empty/bad/non-positive entry or < 2 widths.
// what names the text in messages: "layers '7,x': ..." (a flag's parser passes "value").
std::vector<int> parse_layers(const std::string& s, const char* what = "layers");
std::string layers_string(const std::vector<int>& layers);

// Where one Linear layer's tensors live inside the flat buffers (element offsets).
struct LayerView {
    int in = 0, out = 0;
    std::size_t w = 0; // W (OUT, IN) at [w, w + OUT*IN)
    std::size_t b = 0; // b (OUT)     at [b, b + OUT) == w + OUT*IN
    std::size_t count() const { return static_cast<std::size_t>(out) * in + out; }
};

// The flat layout of a model with these widths (what Mlp uses; checkpoints too).
std::vector<LayerView> mlp_layout(const std::vector<int>& layers);

// Called during backward when layer `layer`'s gradients (the contiguous range
// [view.w, view.w + view.count()) of the gradient buffer) are final; layers come in reverse order.
using GradReadyFn = std::function<void(int layer, const LayerView& view)>;

class Mlp {
public:
    Mlp(Backend& be, const MlpConfig& cfg, int max_batch);

    const MlpConfig& config() const { return cfg_; }
    Backend& backend() const { return be_; }
    int num_layers() const { return static_cast<int>(views_.size()); }
    const LayerView& layer(int l) const { return views_[static_cast<std::size_t>(l)]; }
    int inputs() const { return cfg_.layers.front(); }
    int classes() const { return cfg_.layers.back(); }
    int max_batch() const { return max_batch_; }
    std::size_t num_params() const { return num_params_; }
    // FLOPs of one row's training step in the gemms (2 per multiply-add): forward, dW, and dX
    // for every layer but the first. The rest (activations, softmax, bias sums, the optimizer)
    // is O(params + widths) and left out, as the usual "6 x params per sample" does.
    double train_flops_per_row() const;

    float* params() { return params_.data(); } // (P), device
    const float* params() const { return params_.data(); }
    Precision precision() const { return cfg_.precision; }
    // (P) bf16 copy of params(), device, for the optimizer step to refresh; nullptr in fp32.
    bf16* params16() { return params16_.data(); }
    // Recomputes params16() from params(): after writing params() directly (e.g. a broadcast).
    void refresh_params16();
    float* grads() { return grad_; } // (P), device
    const float* grads() const { return grad_; }
    // Backward writes its gradients into G from now on (P floats in the backend's memory, kept
    // alive by the caller): e.g. the buffer a GradientAverager shares with the other ranks.
    // The model's own gradient buffer is freed.
    void use_grad_buffer(float* G);
    // Backward writes bf16(gradient) into G16 from now on (P bf16 in the backend's memory, kept
    // alive by the caller; null: no longer), and no longer the float weight gradients: what the
    // ranks exchange with --grad-dtype bf16.
    void use_grad16_buffer(bf16* G16) { grad16_ = G16; }
    bf16* grads16() { return grad16_; } // (P), device; null unless use_grad16_buffer

    void init_params(std::uint64_t seed);
    std::vector<float> download_params() const;
    void upload_params(const std::vector<float>& host);

    // Forward of B rows (0 <= B <= max_batch): returns the logits (B, classes) on the device.
    // With store_pre the pre-activations are kept for backward (training); eval skips them.
    //   X: (B, IN0), device
    const float* forward(const float* X, int B, bool store_pre = true);

    // Softmax cross-entropy of the last forward's logits against labels Y (B), and backward
    // into the gradient buffer (overwritten, not accumulated). scale multiplies dlogits: pass
    // 1 / global_rows so gradients summed over ranks are the global batch mean. With B == 0
    // the gradients are zero (this rank has no rows in the batch) and the callback still runs
    // for every layer, so collectives started from it stay matched across ranks.
    //   X: (B, IN0) the same input as the forward, Y: (B), device
    XentStats loss_backward(const float* X, const std::int32_t* Y, int B, float scale,
                            const GradReadyFn& on_grads = {});

    // Loss and correct count of the last forward (no gradients).
    XentStats loss(const std::int32_t* Y, int B);

private:
    Backend& be_;
    MlpConfig cfg_;
    int max_batch_;
    std::vector<LayerView> views_;
    std::size_t num_params_ = 0;
    DeviceBuffer<float> params_, grads_;
    float* grad_ = nullptr;                 // (P) the gradient buffer: grads_ or the caller's
    bf16* grad16_ = nullptr;                // (P) the caller's bf16 gradient, or null
    std::vector<DeviceBuffer<float>> acts_; // acts_[l]: output of layer l, (max_batch, OUT_l)
    std::vector<DeviceBuffer<float>> pre_;  // pre_[l]: pre-activation of hidden layer l, (max_batch, OUT_l)
    DeviceBuffer<float> dA_, dB_;           // backward ping-pong scratch, (max_batch, max width)
    // bf16 only (empty in fp32): params16_ (P); x16_ (max_batch, IN0) the input;
    // acts16_[l] (max_batch, OUT_l) hidden layer l's output; dZ16_ (max_batch, max width).
    DeviceBuffer<bf16> params16_, x16_, dZ16_;
    std::vector<DeviceBuffer<bf16>> acts16_;

    bool mixed() const { return cfg_.precision == Precision::bf16; }
    // C = op(A) op(B) (+ epilogue) through the gemm of the model's precision: the float
    // operands in fp32, their bf16 copies in bf16. C16, when non-null, receives bf16(C): a
    // hidden output in bf16, or a weight gradient with use_grad16_buffer.
    void gemm(const Gemm& g, const float* A, const bf16* A16, const float* B, const bf16* B16, float* C,
              const float* bias = nullptr, float* pre = nullptr, bf16* C16 = nullptr);
};

} // namespace ompml
