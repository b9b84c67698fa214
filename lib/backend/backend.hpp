// The Backend interface: what nn/ and the drivers call. Every kernel is a method over device
// pointers in this backend's memory space; arguments are validated here, once, with a clear
// error. make_backend() is the one factory; only it knows which backends were built.
#pragma once

#include "core/memory.hpp"
#include "kernels/activation.hpp"
#include "kernels/gemm.hpp"
#include "kernels/optimizer.hpp"
#include "kernels/reduce.hpp"
#include "kernels/softmax_xent.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ompml {

class Backend {
public:
    virtual ~Backend() = default;

    virtual const char* name() const = 0;          // "ref", "omp", "cuda"
    virtual const MemorySpace& memory() const = 0; // where this backend's buffers live
    virtual std::string device() const = 0;        // where its kernels run, for reports
    virtual bool on_gpu() const = 0;               // false when kernels ran on host cores
    virtual void synchronize() const = 0;          // wait for queued device work (timing)

    // gemm (kernels/gemm.hpp): operands float or bf16 (the same type), output float or bf16
    // (bf16: beta must be 0); the forward epilogue (bias, pre, activation) or, with
    // g.act_backward, the activation backward reading pre.
    virtual void gemm(const Gemm& g, const float* A, const float* B, float* C, const float* bias = nullptr,
                      float* pre = nullptr) = 0;
    virtual void gemm(const Gemm& g, const float* A, const float* B, bf16* C, const float* bias = nullptr,
                      float* pre = nullptr) = 0;
    virtual void gemm(const Gemm& g, const bf16* A, const bf16* B, float* C, const float* bias = nullptr,
                      float* pre = nullptr) = 0;
    virtual void gemm(const Gemm& g, const bf16* A, const bf16* B, bf16* C, const float* bias = nullptr,
                      float* pre = nullptr) = 0;
    virtual void convert(std::size_t n, const float* X, bf16* Y) = 0; // round to nearest even
    virtual void convert(std::size_t n, const bf16* X, float* Y) = 0; // exact
    virtual void activation_backward(Act act, std::size_t n, const float* Z, const float* dY, float* dX) = 0;
    // The bias gradient, float or bf16 (the float sum rounded once); rows in chunks with kc.
    virtual void col_sum(int rows, int cols, const float* X, float* out, const KChunks& kc = {}) = 0;
    virtual void col_sum(int rows, int cols, const float* X, bf16* out, const KChunks& kc = {}) = 0;
    // row_loss, when non-null, receives each row's loss (B) too (the reproducible mode sums them
    // in its tree on the host).
    virtual XentStats softmax_xent(int B, int C, const float* logits, const std::int32_t* labels, float scale,
                                   float* dlogits, double* row_loss = nullptr) = 0;
    virtual void normalize_u8(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift) = 0;
    virtual void fill(std::size_t n, float* X, float value) = 0;
    virtual void fill(std::size_t n, bf16* X, float value) = 0;
    // The bf16 overloads of sum_squares and the optimizers read the gradient summed in bf16
    // (--grad-dtype bf16), widening each element as it is read.
    virtual double sum_squares(std::size_t n, const float* X) = 0;
    virtual double sum_squares(std::size_t n, const bf16* X) = 0;
    // W16, when non-null, receives bf16(W) after the step (the mixed-precision weight copy).
    virtual void sgd_update(std::size_t n, const SgdStep& s, float* W, const float* G, float* M,
                            bf16* W16 = nullptr) = 0;
    virtual void sgd_update(std::size_t n, const SgdStep& s, float* W, const bf16* G, float* M,
                            bf16* W16 = nullptr) = 0;
    virtual void adam_update(std::size_t n, const AdamStep& s, float* W, const float* G, float* M, float* V,
                             bf16* W16 = nullptr) = 0;
    virtual void adam_update(std::size_t n, const AdamStep& s, float* W, const bf16* G, float* M, float* V,
                             bf16* W16 = nullptr) = 0;
};

// name: "ref", "omp" or "cuda". Throws Error naming the value and the built backends.
std::unique_ptr<Backend> make_backend(std::string_view name);
std::vector<std::string> available_backends();

// A backend's own device API, beside OpenMP's default device (which rank -> device binding,
// MpiSession::bind_device, always sets): how many devices this process sees and how to select
// one. The cuda backend's is {cudaGetDeviceCount(), cudaSetDevice, "CUDA"}; ref and omp have
// none (count 0, api ""): they run on the host or on OpenMP's default device. lib/parallel binds
// through this, so it never links CUDA itself; tests give it fake counts.
struct DeviceHook {
    int count = 0;                // devices of this API the process sees
    std::function<void(int)> set; // selects device d, 0 <= d < count, for this process
    std::string api;              // "CUDA", for reports; empty: no API of its own
};

// The hook of backend `name`; empty for ref, omp and names this build lacks (make_backend
// reports those). The cuda backend's asks the CUDA runtime for the device count (0 without a
// usable GPU, never an error). Bind before the backend's first allocation: the cuda backend
// allocates on the device current when it was made.
DeviceHook backend_device_hook(std::string_view name);

// The GPU's theoretical peaks, the denominators of "% of peak" (ompml-bench's peak_pct,
// ompml-train's GFLOP/s line): from CUDA device 0's attributes in builds with the CUDA backend
// (the device the cuda backend, cuBLAS and, with NVIDIA's plugin, OpenMP's default device
// use); zeros when unknown.
struct GpuPeak {
    double gbs = 0.0, gflops = 0.0;
};
GpuPeak gpu_peak();

} // namespace ompml
