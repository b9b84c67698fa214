// A bench kernel is one record (RAJAPerf's KernelBase, setFLOPsPerRep/setBytesPerRep, in
// miniature): its name, the dimensions it takes from the flags, its FLOP and byte counts, the
// tolerance of its check against the ref backend (with the reason beside it), how it prepares
// its inputs and runs on a Backend, and which anchors run it too. The bench (bench.cpp) only
// walks the records: no code picks a count, a tolerance or an input by a kernel's name.
//
// Counting rules, the same for every record: FLOPs count one per add, multiply, compare or
// transcendental; bytes are the minimum DRAM traffic (each input read once, each output written
// once). A tolerance bounds the normwise relative error max|got - ref| / max|ref| per output.
// The records live in layer_kernels.cpp (gemm, activations, col_sum, softmax_xent),
// vector_kernels.cpp (normalize_u8 and the vector and optimizer kernels) and train_step.cpp.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"
#include "core/precision.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ompml::bench {

class Anchor;

// What the flags ask for; each kernel takes its own dimensions from it.
struct Problem {
    long long m = 1024, n = 1024, k = 1024;     // gemm's M, N, K; rows (m) and cols (n) of the row kernels
    long long len = 1LL << 22;                  // length of the vector kernels
    std::vector<int> layers{784, 512, 256, 10}; // train_step's model
    long long batch = 128;                      // train_step's batch (--m when given)
    Precision precision = Precision::fp32;      // --precision: operands of gemm and train_step
};

// The dimensions one kernel runs on, as the CSV reports them (m, n, k; unused ones are 1), and
// the precision of its operands (fp32 unless the kernel takes --precision).
struct Dims {
    long long m = 1, n = 1, k = 1;
    Precision precision = Precision::fp32;
};

// A result as parts, each compared normwise on its own (e.g. dlogits, the loss, the count).
using Result = std::vector<std::vector<double>>;

// A kernel bound to operands on one backend or anchor: `once` runs it, `result` downloads what
// it produced.
struct Prepared {
    std::function<void()> once;
    std::function<Result()> result;
};

// Which of the device's peaks bounds a kernel (the denominator of peak_pct).
enum class Bound { bandwidth, flops };

struct Kernel {
    const char* name;
    Bound bound;
    Dims (*dims)(const Problem&); // throws Error when the flags give sizes it cannot take
    double (*flops)(const Dims&);
    double (*bytes)(const Dims&);
    double (*tolerance)(const Dims&); // allowed max_rel_err against ref
    Prepared (*prepare)(Backend&, const Problem&, const Dims&);
    // Anchors that run it too (names of lib/bench/anchor.hpp), the first present one being
    // the table's "x anchor" baseline, and how it runs on them (the same inputs).
    std::vector<const char*> anchors = {};
    Prepared (*prepare_anchor)(Anchor&, const Problem&, const Dims&) = nullptr;
    // Runs in --precision's number format (Dims::precision); its rows are then named
    // "<name>_bf16" for bf16.
    bool takes_precision = false;
};

// A row's kernel name: the record's, with "_bf16" when it ran on bf16 operands.
std::string row_name(const Kernel& k, const Dims& d);

// Every kernel, in the order of `--kernel all`.
const std::vector<Kernel>& all_kernels();
std::vector<Kernel> layer_kernels();     // layer_kernels.cpp
std::vector<Kernel> vector_kernels();    // vector_kernels.cpp
std::vector<Kernel> train_step_kernel(); // train_step.cpp

// ---------------------------------------------------------------------------------------------
// For the records: dimensions, inputs and results.

constexpr double kEps = 5.96e-8; // float32 unit roundoff

Dims mnk(const Problem& p);       // (m, n, k), and --precision
Dims rows_cols(const Problem& p); // (m, n), m * n within an int
Dims vec(const Problem& p);       // (len)

// n values uniform in [lo, hi), the same for every backend: a function of (n, stream) only.
std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo = -1.0f, float hi = 1.0f);
// n bytes spread over 0..255 (a multiplicative hash of the index).
std::vector<std::uint8_t> spread_bytes(std::size_t n);

// A buffer in x's memory space (x: a Backend or an Anchor), uploaded from host or of n elements.
template <class X, class T>
std::shared_ptr<DeviceBuffer<T>> upload(const X& x, const std::vector<T>& host)
{
    return std::make_shared<DeviceBuffer<T>>(x.memory(), host);
}
template <class T, class X>
std::shared_ptr<DeviceBuffer<T>> alloc(const X& x, std::size_t n)
{
    return std::make_shared<DeviceBuffer<T>>(x.memory(), n);
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v)
{
    return std::vector<double>(v.begin(), v.end());
}

// The result function of a kernel whose output is the buffers bufs, downloaded in order.
template <class... B>
std::function<Result()> outputs(B... bufs)
{
    return [=] { return Result{as_double(bufs->to_vector())...}; };
}

} // namespace ompml::bench
