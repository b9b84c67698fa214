// Mlp<T, G>: the typed model (nn/model.hpp says what a model is and how it is laid out).
// T is the gemm operand type (the compute precision), G the gradient's element type; both are
// chosen once, at the top (make_step, nn/step.hpp), and nothing here asks which they are: the
// types pick the overloads.
//   T = float: the gemms read the float tensors themselves.
//   T = bf16 (--precision bf16): the gemms read bf16 copies of the weights (refreshed by the
//     optimizer step in the same pass, and by params_changed), of the input batch (converted
//     once per forward) and of each layer's output gradient dZ (converted before its two
//     backward gemms); each hidden layer's output is written in bf16 by its gemm's epilogue.
//     Master weights, pre-activations, logits, softmax, loss and optimizer state stay float.
//   G = float: backward writes the gradient in float.
//   G = bf16 (--grad-dtype bf16 on several ranks): backward writes the gradient in bf16 for the
//     ranks to exchange as it is: the weight gradients straight from the dW gemm's epilogue, the
//     bias gradients rounded once from their float column sums.
// The model owns its gradient buffer for its whole life, allocated in grad_memory (the
// backend's memory, or memory a gradient transport shares between the ranks of a node); the
// transport is handed a view of it.
//
// Backward per layer, last first: dW = dZ^T X, db = colsum(dZ), then dX = dZ W with the
// previous layer's activation backward fused into that gemm's epilogue (relu's read from the
// previous layer's output when it is float; other activations from its pre-activation).
#pragma once

#include "nn/model.hpp"
#include "nn/operand.hpp"

namespace ompml {

template <class T, class G>
class Mlp final : public Model {
public:
    // tree: the fixed summation tree of --reproducible-ranks (off by default).
    Mlp(Backend& be, const MlpConfig& cfg, int max_batch, const MemorySpace& grad_memory, BatchTree tree = {});
    Mlp(Backend& be, const MlpConfig& cfg, int max_batch) : Mlp(be, cfg, max_batch, be.memory()) {}

    G* grads() { return grad_.data(); } // (P) the gradient, device
    const G* grads() const { return grad_.data(); }
    // The operand copy of the weights for the optimizer step to refresh (null in fp32).
    bf16* weight_copy() { return wcopy_.copy(); }

    void params_changed() override;
    const float* forward(const float* X, int B, bool store_pre = true) override;

    // Softmax cross-entropy of the last forward (with store_pre) against labels Y (B), and
    // backward into the gradient (overwritten, not accumulated). B is this rank's share of a
    // global batch of global_rows rows: dlogits are scaled by 1 / global_rows, so gradients
    // summed over ranks are the global batch mean. With B == 0 the gradients are zero (this rank
    // has no rows in the batch) and the callback still runs for every layer, so collectives
    // started from it stay matched across ranks. With a BatchTree, the weight and bias gradients
    // and the loss are summed over the rows chunk by chunk in its tree.
    //   Y: (B), device
    XentStats loss_backward(const std::int32_t* Y, int B, int global_rows, const GradReadyFn& on_grads = {});

private:
    // This rank's loss: its rows' losses (row_loss_) summed chunk by chunk in the tree.
    double chunk_tree_loss(const KChunks& kc) const;
    // Whether forward keeps the hidden layers' pre-activations (pre_) for backward: not for relu
    // with float activations, whose backward reads the layer's output itself (relu' is 0 exactly
    // where relu(z) <= 0, as where z <= 0; NaN passes both).
    bool keeps_pre() const;
    // What hidden layer l's activation backward reads as its pre-activation: pre_[l], or the
    // layer's output.
    float* backward_pre(int l);

    DeviceBuffer<G> grad_;                // (P)
    OperandCopy<T> wcopy_;                // (P) the weights as gemm operands
    OperandCopy<T> xcopy_;                // (max_batch, IN0) the input batch as a gemm operand
    OperandCopy<T> dzcopy_;               // (max_batch, widest) an output gradient as a gemm operand
    std::vector<DeviceBuffer<T>> hidden_; // hidden_[l]: output of hidden layer l, (max_batch, OUT_l)
    const T* x_op_ = nullptr;             // the last forward's input, as an operand
    BatchTree tree_;
    DeviceBuffer<double> row_loss_; // (max_batch) each row's loss, for the tree (with a BatchTree)
};

} // namespace ompml
