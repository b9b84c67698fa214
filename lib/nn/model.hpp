// Model: an MLP as the training loop, evaluation, checkpoints and the bench see it, whatever its
// precision: a stack of Linear layers with a hidden activation (relu | tanh | gelu); the last
// layer is the identity and produces logits for softmax cross-entropy. The typed model behind
// it, Mlp<T, G> (nn/mlp.hpp), holds what depends on the gemm operand type T and the gradient
// type G; this base holds the float side, which every precision shares.
//
// Memory layout (the project's invariant: training stays on the device, in flat buffers): ONE
// flat parameter buffer (fp32 master weights) and ONE flat gradient buffer of the same layout, on
// the device. Layer l occupies a contiguous range:
//     W_l (OUT, IN) row-major, like PyTorch's nn.Linear.weight, then b_l (OUT)
// so a layer's gradient is one contiguous bucket (what the ranks sum). Activations,
// pre-activations and backward scratch are device buffers sized for max_batch rows, allocated
// once in the constructor; forward/backward never allocate.
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
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace ompml {

struct MlpConfig {
    std::vector<int> layers{784, 512, 256, 10}; // widths: input, hidden..., classes
    Act activation = Act::relu;                 // hidden layers; the last layer is identity
    // bf16: the gemms read bf16 copies of the weights and of each layer's input, and
    // accumulate in float; the parameters stay the fp32 master weights (nn/mlp.hpp).
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

// The fixed summation tree of --reproducible-ranks (kernels/tree_sum.hpp): every global batch cut
// into `chunks` chunks (a power of two; 0: off), this rank holding the aligned range of
// chunks / ranks of them. Backward then sums the weight and bias gradients and the loss over its
// rows chunk by chunk in the split tree, so this rank's sums are a subtree of the whole batch's.
struct BatchTree {
    int chunks = 0;
    int rank = 0, ranks = 1;
    // The chunks of a global batch of `rows` rows that this rank's rows are (off: chunks 0).
    KChunks of(long rows) const
    {
        if (chunks == 0) return {};
        return KChunks{rows, chunks, rank * (chunks / ranks), chunks / ranks};
    }
};

// Called during backward when layer `layer`'s gradients (the contiguous range
// [view.w, view.w + view.count()) of the gradient buffer) are final; layers come in reverse order.
using GradReadyFn = std::function<void(int layer, const LayerView& view)>;

class Model {
public:
    virtual ~Model() = default;
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

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

    float* params() { return params_.data(); } // (P) fp32 master weights, device
    const float* params() const { return params_.data(); }
    void init_params(std::uint64_t seed);
    std::vector<float> download_params() const;
    void upload_params(const std::vector<float>& host);
    // After params() were written directly (a broadcast): the gemm operands follow them.
    virtual void params_changed() = 0;

    // Forward of B rows (0 <= B <= max_batch): returns the logits (B, classes) on the device.
    // With store_pre what backward needs of the activations is kept (training: the
    // pre-activations, or for relu on floats the outputs alone); eval skips the pre-activations.
    //   X: (B, IN0), device
    virtual const float* forward(const float* X, int B, bool store_pre = true) = 0;
    // Loss and correct count of the last forward (no gradients).
    XentStats loss(const std::int32_t* Y, int B);

protected:
    // The layout of cfg (nothing allocated yet: the typed model allocates everything in one go,
    // allocate_float_side then its own buffers, so a failure names the whole size).
    Model(Backend& be, const MlpConfig& cfg, int max_batch);
    // The fp32 parameters (zeroed), logits, backward scratch and, with pre, the hidden layers'
    // pre-activations.
    void allocate_float_side(bool pre);
    std::size_t float_side_bytes(bool pre) const;
    // Throws Error naming the model, the bytes it needs in all and the memory: "model 784,512,10
    // (407050 parameters, batch 128): cannot allocate its 3.3 MiB of host memory: ...".
    [[noreturn]] void allocation_failed(std::size_t bytes, const std::exception& e) const;

    Backend& be_;
    MlpConfig cfg_;
    int max_batch_;
    std::vector<LayerView> views_;
    std::size_t num_params_ = 0;
    int widest_ = 1;                       // the widest layer output
    DeviceBuffer<float> params_;           // (P)
    DeviceBuffer<float> logits_;           // (max_batch, classes)
    std::vector<DeviceBuffer<float>> pre_; // pre_[l]: pre-activation of hidden layer l, (max_batch, OUT_l), or none
    DeviceBuffer<float> dA_, dB_;          // backward ping-pong scratch, (max_batch, widest)
};

} // namespace ompml
