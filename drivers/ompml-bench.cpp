// ompml-bench: times the kernels of one or more backends on the same inputs.
//
//   ompml-bench --backend omp --kernel gemm --m 1024 --n 1024 --k 1024 --csv
//   ompml-bench --compare omp,ref --kernel all
//
// Every result is first checked against the ref backend (--no-check skips that), then each
// kernel runs --warmup untimed and --reps timed times; min/avg/max are printed with FLOP and
// byte counts from one metadata table (kKernels). Anchors measured in the same run give
// ratios from one CSV: OpenBLAS cblas_sgemm for gemm (when the build found OpenBLAS) and a
// plain `#pragma omp parallel for` host loop for scale and normalize_u8; cuBLAS cublas_sgemm
// for gemm (builds with cuBLAS, when a CUDA device is present): the GPU upper anchor.
// The OpenBLAS anchor names the core (kernel set) and threads it ran (an `openblas` header line,
// a `# openblas:` CSV comment) and warns when OPENBLAS_CORETYPE forces a core below what the
// CPU supports (drivers/openblas_core.hpp): run the anchor with it unset.
// train_step is a pseudo-kernel: one whole training step of an Mlp (--layers, batch = --m,
// default 128) with Adam: forward + loss_backward + optimizer step on a fixed device batch.
// A backend whose kernels ran on host cores is never reported as a GPU (Backend::on_gpu()).
// peak_pct: a GPU row's GB/s (bandwidth kernels) or GFLOP/s (gemm, train_step) as a percentage
// of the device's theoretical peak (from the CUDA device's attributes, or --peak-gbs and
// --peak-gflops); nan (table: -) for rows on host cores. With --compare A,B, max_diff is the
// normwise relative difference between A's and B's results on the same inputs,
// max |A - B| / max |B| per output (run with --no-check too: it needs no reference).
#include "backend/backend.hpp"
#include "cli.hpp"
#include "core/buffer.hpp"
#include "core/check.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"

#include <CLI/CLI.hpp>
#include <omp.h>

#ifdef OMPML_WITH_OPENBLAS
#include "openblas_core.hpp"

#include <cblas.h>
#endif
#ifdef OMPML_WITH_CUDA
#include "backend/backend_cuda.hpp"
#endif
#ifdef OMPML_WITH_CUBLAS
#include "backend/cublas_anchor.hpp"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace ompml;

namespace {

// ---------------------------------------------------------------------------------------------
// Kernel metadata: one row per benchmarked kernel. Sizes are (m, n, k) for gemm, (rows = m,
// cols = n) for the row/column kernels and (len) for the vector kernels. FLOPs count one per
// add, multiply, compare or transcendental; bytes are the minimum DRAM traffic (each input
// read once, each output written once). tol bounds the normwise relative error against ref;
// one-operation kernels get 4 eps: a multiply-add fused on one side and not on the other
// (the x86 offload device is compiled without -march=native) is a rounding apart.

// step: train_step, reported as (m = batch, n = parameter count, k = 1).
enum class Shape { mnk, rows_cols, len, step };

struct Sizes {
    long long m, n, k, len;
};

constexpr double kEps = 5.96e-8; // float32 unit roundoff

struct KernelInfo {
    const char* name;
    Shape shape;
    double flops_per; // per element of the shape (per m*n*k multiply-add for gemm)
    double bytes_per; // per element of the shape's main array
    double tol;       // allowed normwise relative error, times the reduction length below
};

// Elements that the per-element counts multiply: m*n*k for gemm, rows*cols, or len.
double elements(Shape s, const Sizes& z)
{
    return s == Shape::mnk                                  ? double(z.m) * z.n * z.k
           : s == Shape::rows_cols || s == Shape::step ? double(z.m) * z.n
                                                          : double(z.len);
}

const KernelInfo kKernels[] = {
    // name              shape              flops  bytes  tol (x reduction length)
    {"gemm",            Shape::mnk,        2,     0,     4 * kEps}, // bytes: 4 (mk + kn + mn), below
    {"activation_relu", Shape::len,        1,     12,    4 * kEps}, // dX = dY * (Z > 0)
    {"activation_gelu", Shape::len,        14,    12,    64 * kEps},
    {"col_sum",         Shape::rows_cols,  1,     4,     4 * kEps}, // + out: (cols)
    {"softmax_xent",    Shape::rows_cols,  6,     8,     8 * kEps}, // logits in, dlogits out
    {"normalize_u8",    Shape::len,        2,     5,     4 * kEps}, // 1 byte in, 4 out
    {"fill",            Shape::len,        0,     4,     0},
    {"scale",           Shape::len,        1,     8,     4 * kEps},
    {"sum_squares",     Shape::len,        2,     4,     4 * kEps},
    {"sgd",             Shape::len,        6,     20,    16 * kEps}, // momentum + weight decay
    {"adam",            Shape::len,        15,    28,    16 * kEps},
    // A whole step (forward + backward + Adam) per (batch x params): ~2 FLOPs per parameter
    // and row forward, ~4 backward (dX and dW gemms), so 6 * batch * params, an approximation
    // that leaves out activations, softmax, bias sums and the optimizer's per-parameter math.
    // Bytes per parameter (not per element; see kernel_bytes): W read forward and backward
    // (8), G written (4), Adam reads W, G, m, v and writes W, m, v (28). tol: the relative
    // difference of the loss after one step (see prepare); summation order and fused
    // multiply-adds differ between backends, and Adam's first step is ~lr * sign(g).
    {"train_step",      Shape::step,       6,     40,    1e-4},
};

// Kernels whose speed is counted against the FLOP peak; the others against the bandwidth peak.
bool flop_bound(const KernelInfo& ki) { return ki.shape == Shape::mnk || ki.shape == Shape::step; }

double kernel_flops(const KernelInfo& ki, const Sizes& z) { return ki.flops_per * elements(ki.shape, z); }

double kernel_bytes(const KernelInfo& ki, const Sizes& z)
{
    if (ki.shape == Shape::mnk) return 4.0 * (double(z.m) * z.k + double(z.k) * z.n + double(z.m) * z.n);
    if (ki.shape == Shape::step) return ki.bytes_per * double(z.n); // per parameter: an estimate
    double b = ki.bytes_per * elements(ki.shape, z);
    if (ki.shape == Shape::rows_cols) {
        const std::string n = ki.name;
        b += 4.0 * (n == "col_sum" ? z.n : n == "softmax_xent" ? 0 : z.m); // the output vector
        if (n == "softmax_xent") b += 4.0 * z.m;                           // labels
    }
    return b;
}

// Reduction length that scales the tolerance (float sums of that many terms).
double tolerance(const KernelInfo& ki, const Sizes& z)
{
    const std::string n = ki.name;
    if (ki.shape == Shape::step) return ki.tol;
    const double len = n == "gemm" ? z.k : n == "col_sum" ? z.m : n == "softmax_xent" ? z.n : 1;
    return ki.tol * std::max(1.0, len);
}

// ---------------------------------------------------------------------------------------------
// Inputs (host, generated once per kernel and shared by every backend) and one prepared run.

std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo = -1.0f, float hi = 1.0f)
{
    const Rng rng(2024, stream);
    std::vector<float> v(n);
#pragma omp parallel for
    for (std::size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.uniform(i);
    return v;
}

// A kernel bound to buffers on one backend: `once` runs it, `result` downloads what it
// produced as parts to check (each compared normwise on its own).
struct Prepared {
    std::function<void()> once;
    std::function<std::vector<std::vector<double>>()> result;
};

template <class T>
std::vector<double> as_double(const std::vector<T>& v)
{
    return std::vector<double>(v.begin(), v.end());
}

template <class T>
std::shared_ptr<DeviceBuffer<T>> buf(const Backend& be, const std::vector<T>& host)
{
    return std::make_shared<DeviceBuffer<T>>(be.memory(), host);
}
template <class T>
std::shared_ptr<DeviceBuffer<T>> buf(const Backend& be, std::size_t n)
{
    return std::make_shared<DeviceBuffer<T>>(be.memory(), n);
}

// train_step's model: these widths, batch z.m rows.
Prepared prepare_train_step(Backend& be, const Sizes& z, const std::vector<int>& layers)
{
    const int B = static_cast<int>(z.m);
    MlpConfig mc;
    mc.layers = layers;
    mc.activation = Act::relu;
    auto model = std::make_shared<Mlp>(be, mc, B);
    model->init_params(7);
    OptimizerConfig oc; // Adam, lr 1e-3, PyTorch defaults
    auto opt = std::make_shared<Optimizer>(be, oc, model->num_params());
    // The fixed batch, resident on the device: X (B, IN) in [0, 1), Y (B) labels.
    const int in = layers.front(), classes = layers.back();
    std::vector<std::int32_t> lab(static_cast<std::size_t>(B));
    const Rng rng(2024, 18);
    for (int i = 0; i < B; ++i) lab[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng.below(i, classes));
    auto X = buf(be, random_floats(std::size_t(B) * in, 17, 0.0f, 1.0f)); // (B, IN)
    auto Y = buf(be, lab);                                                // (B)
    const float lr = oc.lr;
    return {[=] {
                model->forward(X->data(), B, true);
                model->loss_backward(X->data(), Y->data(), B, 1.0f / static_cast<float>(B));
                opt->step(model->params(), model->grads(), lr);
            },
            // The check runs `once` one time on fresh parameters: this is the mean loss on the
            // batch after that one step (so it covers forward, backward and the update).
            [=] {
                model->forward(X->data(), B, false);
                const XentStats st = model->loss(Y->data(), B);
                return std::vector<std::vector<double>>{{st.loss_sum / B}};
            }};
}

Prepared prepare(const std::string& kernel, Backend& be, const Sizes& z, const std::vector<int>& layers)
{
    if (kernel == "train_step") return prepare_train_step(be, z, layers);
    const auto m = static_cast<int>(z.m), n = static_cast<int>(z.n), k = static_cast<int>(z.k);
    const auto len = static_cast<std::size_t>(z.len);
    const auto mn = static_cast<std::size_t>(z.m) * static_cast<std::size_t>(z.n);
    Backend* b = &be;
    auto out = [](auto p) { return [p] { return std::vector<std::vector<double>>{as_double(p->to_vector())}; }; };

    if (kernel == "gemm") {
        const Gemm g{false, false, m, n, k, 1.0f, 0.0f, Act::identity};
        auto A = buf(be, random_floats(std::size_t(m) * k, 1));  // (M, K)
        auto B = buf(be, random_floats(std::size_t(k) * n, 2));  // (K, N)
        auto C = buf<float>(be, std::size_t(m) * n);             // (M, N)
        return {[=] { b->gemm(g, A->data(), B->data(), C->data()); }, out(C)};
    }
    if (kernel == "activation_relu" || kernel == "activation_gelu") {
        const Act act = kernel == "activation_relu" ? Act::relu : Act::gelu;
        auto Z = buf(be, random_floats(len, 3, -4.0f, 4.0f)), dY = buf(be, random_floats(len, 4)); // (len)
        auto dX = buf<float>(be, len);
        return {[=] { b->activation_backward(act, len, Z->data(), dY->data(), dX->data()); }, out(dX)};
    }
    if (kernel == "col_sum") {
        auto X = buf(be, random_floats(mn, 5)); // (rows, cols)
        auto o = buf<float>(be, z.n);           // (cols)
        return {[=] { b->col_sum(m, n, X->data(), o->data(), 0.0f); }, out(o)};
    }
    if (kernel == "softmax_xent") {
        std::vector<std::int32_t> lab(z.m);
        const Rng rng(2024, 7);
        for (int i = 0; i < m; ++i) lab[i] = static_cast<std::int32_t>(rng.below(i, n));
        auto L = buf(be, random_floats(mn, 8, -6.0f, 6.0f)); // (B, C)
        auto Y = buf(be, lab);                               // (B)
        auto dL = buf<float>(be, mn);                        // (B, C)
        auto stats = std::make_shared<XentStats>();
        const float scale = 1.0f / static_cast<float>(m);
        return {[=] { *stats = b->softmax_xent(m, n, L->data(), Y->data(), scale, dL->data()); },
                [=] {
                    return std::vector<std::vector<double>>{as_double(dL->to_vector()), {stats->loss_sum},
                                                            {double(stats->correct)}};
                }};
    }
    if (kernel == "normalize_u8") {
        std::vector<std::uint8_t> bytes(len);
        for (std::size_t i = 0; i < len; ++i) bytes[i] = static_cast<std::uint8_t>(i * 2654435761u >> 24);
        auto X = buf(be, bytes);     // (len) bytes
        auto Y = buf<float>(be, len); // (len)
        return {[=] { b->normalize_u8(len, X->data(), Y->data(), 1.0f / 255.0f, -0.5f); }, out(Y)};
    }
    if (kernel == "fill" || kernel == "scale") {
        auto X = buf(be, random_floats(len, 9)); // (len)
        if (kernel == "fill") return {[=] { b->fill(len, X->data(), 0.5f); }, out(X)};
        return {[=] { b->scale(len, X->data(), 0.999f); }, out(X)};
    }
    if (kernel == "sum_squares") {
        auto X = buf(be, random_floats(len, 12)); // (len)
        auto s = std::make_shared<double>(0.0);
        return {[=] { *s = b->sum_squares(len, X->data()); }, [=] { return std::vector<std::vector<double>>{{*s}}; }};
    }
    if (kernel == "sgd") {
        auto W = buf(be, random_floats(len, 13)), G = buf(be, random_floats(len, 14)); // (len)
        auto M = buf(be, std::vector<float>(len, 0.0f));
        const SgdStep s{0.01f, 0.9f, 1e-4f};
        return {[=] { b->sgd_update(len, s, W->data(), G->data(), M->data()); },
                [=] { return std::vector<std::vector<double>>{as_double(W->to_vector()), as_double(M->to_vector())}; }};
    }
    if (kernel == "adam") {
        auto W = buf(be, random_floats(len, 15)), G = buf(be, random_floats(len, 16)); // (len)
        auto M = buf(be, std::vector<float>(len, 0.0f)), V = buf(be, std::vector<float>(len, 0.0f));
        AdamStep s;
        s.weight_decay = 1e-2f;
        s.decoupled = true;
        return {[=] { b->adam_update(len, s, W->data(), G->data(), M->data(), V->data()); },
                [=] {
                    return std::vector<std::vector<double>>{as_double(W->to_vector()), as_double(M->to_vector()),
                                                            as_double(V->to_vector())};
                }};
    }
    throw Error("no benchmark for kernel '" + kernel + "'");
}

// ---------------------------------------------------------------------------------------------
// Anchors: host baselines on host memory, measured in the same run.

// The plain host loops the omp kernels are measured against (same thread count).
void scale_parallel_for(std::size_t n, float* X, float a)
{
#pragma omp parallel for
    for (std::size_t i = 0; i < n; ++i) X[i] *= a;
}
void normalize_parallel_for(std::size_t n, const std::uint8_t* X, float* Y, float scale, float shift)
{
#pragma omp parallel for
    for (std::size_t i = 0; i < n; ++i) Y[i] = static_cast<float>(X[i]) * scale + shift;
}

#ifdef OMPML_WITH_OPENBLAS
// What the openblas anchor runs: OpenBLAS's core (kernel set) and threads, the CPU's widest
// vector ISA, and the environment variables that steer OpenBLAS's choice (openblas_core.hpp).
struct OpenblasInfo {
    std::string core, config; // openblas_get_corename(), openblas_get_config() (version, build)
    int threads = 0;          // openblas_get_num_threads()
    Isa core_isa = Isa::unknown, cpu = Isa::unknown;
    std::string coretype, l2_size; // OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE; "" when unset
};

OpenblasInfo openblas_info()
{
    const auto text = [](const char* s) { return std::string(s != nullptr ? s : ""); };
    OpenblasInfo o;
    o.core = text(openblas_get_corename());
    o.config = text(openblas_get_config());
    o.threads = openblas_get_num_threads();
    o.core_isa = openblas_core_isa(o.core);
    o.cpu = cpu_isa();
    o.coretype = text(std::getenv("OPENBLAS_CORETYPE"));
    o.l2_size = text(std::getenv("OPENBLAS_L2_SIZE"));
    return o;
}

// "core=Haswell core_isa=AVX2 cpu_isa=AVX-512 threads=2 OPENBLAS_CORETYPE=Haswell
// OPENBLAS_L2_SIZE=unset config=OpenBLAS 0.3.21 ...": key=value pairs, the free text last, for
// the CSV's `# openblas:` comment line and the table's header.
std::string openblas_text(const OpenblasInfo& o)
{
    const auto env = [](const std::string& v) { return v.empty() ? std::string("unset") : v; };
    return "core=" + o.core + " core_isa=" + isa_name(o.core_isa) + " cpu_isa=" + isa_name(o.cpu) +
           " threads=" + std::to_string(o.threads) + " OPENBLAS_CORETYPE=" + env(o.coretype) +
           " OPENBLAS_L2_SIZE=" + env(o.l2_size) + " config=" + o.config;
}
#endif

struct Anchor {
    std::string name;   // the backend column
    std::string device; // for the `# device:` line
    Prepared run;
    std::function<void()> sync; // waits for queued device work (timing)
    bool gpu = false;           // runs on a GPU (counts against the device's peak)
};

std::vector<Anchor> anchors_for(const std::string& kernel, const Sizes& z)
{
    std::vector<Anchor> a;
    const std::string pf_device = "host (" + std::to_string(omp_get_max_threads()) + " threads, #pragma omp parallel for)";
    const auto len = static_cast<std::size_t>(z.len);
    if (kernel == "scale") {
        auto X = std::make_shared<std::vector<float>>(random_floats(len, 9));
        a.push_back({"omp-parallel-for", pf_device,
                     {[=] { scale_parallel_for(len, X->data(), 0.999f); },
                      [=] { return std::vector<std::vector<double>>{as_double(*X)}; }},
                     [] {}});
    }
    if (kernel == "normalize_u8") {
        auto X = std::make_shared<std::vector<std::uint8_t>>(len);
        for (std::size_t i = 0; i < len; ++i) (*X)[i] = static_cast<std::uint8_t>(i * 2654435761u >> 24);
        auto Y = std::make_shared<std::vector<float>>(len);
        a.push_back({"omp-parallel-for", pf_device,
                     {[=] { normalize_parallel_for(len, X->data(), Y->data(), 1.0f / 255.0f, -0.5f); },
                      [=] { return std::vector<std::vector<double>>{as_double(*Y)}; }},
                     [] {}});
    }
#ifdef OMPML_WITH_OPENBLAS
    if (kernel == "gemm") {
        const int m = static_cast<int>(z.m), n = static_cast<int>(z.n), k = static_cast<int>(z.k);
        auto A = std::make_shared<std::vector<float>>(random_floats(std::size_t(m) * k, 1)); // (M, K)
        auto B = std::make_shared<std::vector<float>>(random_floats(std::size_t(k) * n, 2)); // (K, N)
        auto C = std::make_shared<std::vector<float>>(std::size_t(m) * n);                  // (M, N)
        const OpenblasInfo ob = openblas_info();
        a.push_back({"openblas", "host (OpenBLAS cblas_sgemm, core " + ob.core + ", " + std::to_string(ob.threads) + " threads)",
                     {[=] {
                          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, A->data(), k,
                                      B->data(), n, 0.0f, C->data(), n);
                      },
                      [=] { return std::vector<std::vector<double>>{as_double(*C)}; }},
                     [] {}});
    }
#endif
#ifdef OMPML_WITH_CUBLAS
    // The GPU upper anchor: cuBLAS SGEMM (FP32, no TF32) on operands in the cuda backend's
    // device memory, same inputs as the backends.
    if (kernel == "gemm") {
        std::string why;
        if (cuda_device_count(&why) > 0) {
            const int m = static_cast<int>(z.m), n = static_cast<int>(z.n), k = static_cast<int>(z.k);
            std::shared_ptr<Backend> cu = make_backend("cuda"); // owns the device memory space
            auto A = buf(*cu, random_floats(std::size_t(m) * k, 1)); // (M, K)
            auto B = buf(*cu, random_floats(std::size_t(k) * n, 2)); // (K, N)
            auto C = buf<float>(*cu, std::size_t(m) * n);            // (M, N)
            a.push_back({"cublas", cu->device() + " [GPU] (cuBLAS cublas_sgemm, FP32)",
                         {[=] { cublas_sgemm(false, false, m, n, k, 1.0f, A->data(), B->data(), 0.0f, C->data()); },
                          [=] { return std::vector<std::vector<double>>{as_double(C->to_vector())}; }},
                         [cu] { cu->synchronize(); },
                         true});
        } else {
            std::cerr << "ompml-bench: note: cuBLAS anchor skipped: no GPU" << (why.empty() ? "" : " (" + why + ")")
                      << "\n";
        }
    }
#endif
    (void)z;
    return a;
}

// ---------------------------------------------------------------------------------------------
// Checking and timing

// max over parts of max_i |got - ref| / max_i |ref| (normwise: no blow-up where ref ~ 0).
double max_rel_err(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& ref)
{
    double worst = 0.0;
    for (std::size_t p = 0; p < ref.size(); ++p) {
        double num = 0.0, den = 0.0;
        for (std::size_t i = 0; i < ref[p].size(); ++i) {
            const double d = std::fabs(got[p][i] - ref[p][i]);
            num = std::isnan(d) ? INFINITY : std::max(num, d);
            den = std::max(den, std::fabs(ref[p][i]));
        }
        worst = std::max(worst, num == 0.0 ? 0.0 : num / (den > 0.0 ? den : 1.0));
    }
    return worst;
}

struct Row {
    const KernelInfo* info; // the kernel's metadata row
    std::string kernel, backend;
    Sizes z;
    double bytes, flops, min_ms, avg_ms, max_ms, err; // err NaN when not checked
    double diff = NAN;                                // --compare: A against B, NaN otherwise
};

// One backend's (or anchor's) run of a kernel, checked and ready to time.
struct Job {
    std::string backend;
    Prepared run;
    std::function<void()> sync;
    double err; // NaN when not checked
};

// Times the jobs of one kernel side by side: warm-up runs of each, then the timed runs
// round-robin (rep 1 of every job, rep 2 of every job, ...), so load from other processes on a
// shared machine falls on all of them alike rather than on whichever ran last.
std::vector<Row> time_jobs(const KernelInfo& ki, const Sizes& z, const std::vector<Job>& jobs, int warmup, int reps)
{
    for (const auto& j : jobs) {
        for (int i = 0; i < warmup; ++i) j.run.once();
        j.sync();
    }
    std::vector<std::vector<double>> ms(jobs.size());
    for (int i = 0; i < reps; ++i)
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            Stopwatch sw;
            jobs[j].run.once();
            jobs[j].sync();
            ms[j].push_back(sw.millis());
        }
    std::vector<Row> rows;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        const auto [mn, mx] = std::minmax_element(ms[j].begin(), ms[j].end());
        double sum = 0.0;
        for (double t : ms[j]) sum += t;
        rows.push_back({&ki, ki.name, jobs[j].backend, z, kernel_bytes(ki, z), kernel_flops(ki, z), *mn, sum / reps, *mx,
                        jobs[j].err});
    }
    return rows;
}

Sizes shape_of(const KernelInfo& ki, const Sizes& z)
{
    // Report only the dimensions a kernel uses; the others print as 1.
    if (ki.shape == Shape::mnk) return {z.m, z.n, z.k, 0};
    if (ki.shape == Shape::rows_cols) return {z.m, z.n, 1, 0};
    if (ki.shape == Shape::step) return {z.m, z.n, 1, 0}; // (batch, params), set in main
    return {z.len, 1, 1, z.len};
}

std::vector<std::string> split(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::string fmt(double v, int prec = 3)
{
    if (std::isnan(v)) return "nan";
    char b[64];
    std::snprintf(b, sizeof b, "%.*g", prec + 3, v);
    return b;
}

const char* kCsvHeader = "kernel,backend,m,n,k,bytes,flops,min_ms,avg_ms,max_ms,gflops,gbs,max_rel_err,peak_pct";

// The GPU's theoretical peaks, the denominators of peak_pct (0: unknown).
struct Peak {
    double gbs = 0.0, gflops = 0.0;
    std::string source;
};

// --peak-gbs/--peak-gflops where given, else the attributes of CUDA device 0 (the device the
// cuda backend, cuBLAS and, with NVIDIA's plugin, OpenMP's default device use), else unknown.
Peak device_peak(double gbs, double gflops)
{
    Peak p{gbs, gflops, "--peak-gbs/--peak-gflops"};
#ifdef OMPML_WITH_CUDA
    if (gbs <= 0.0 || gflops <= 0.0) {
        const DevicePeak d = cuda_device_peak(0);
        if (d.gbs > 0.0) {
            if (p.gbs <= 0.0) p.gbs = d.gbs;
            if (p.gflops <= 0.0) p.gflops = d.gflops;
            p.source = "CUDA device 0 attributes";
        }
    }
#endif
    return p;
}

// A GPU row's speed as a percentage of the peak that bounds its kernel; NaN on host cores or
// where the peak is unknown.
double peak_pct(const Row& r, bool gpu, const Peak& peak)
{
    const bool by_flops = flop_bound(*r.info);
    const double s = r.min_ms * 1e-3, denom = by_flops ? peak.gflops : peak.gbs;
    if (!gpu || denom <= 0.0) return NAN;
    return 100.0 * (by_flops ? r.flops : r.bytes) / s * 1e-9 / denom;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ompml-bench: time ompml kernels per backend, checked against the ref backend"};
    std::string backends_opt = "omp", compare_opt, kernels_opt = "all";
    Sizes z{1024, 1024, 1024, 1 << 22};
    int warmup = 2, reps = 10;
    bool csv = false, no_check = false;
    std::string layers_opt = "784,512,256,10";
    double peak_gbs = 0.0, peak_gflops = 0.0;

    std::vector<std::string> kernel_names{"all"};
    for (const auto& ki : kKernels) kernel_names.emplace_back(ki.name);
    std::string known_kernels;
    for (const auto& n : kernel_names) known_kernels += (known_kernels.empty() ? "" : ", ") + n;

    auto* be_opt = app.add_option("--backend", backends_opt, "backend(s), comma list (" +
                                                                 [] {
                                                                     std::string s;
                                                                     for (const auto& n : available_backends())
                                                                         s += (s.empty() ? "" : ", ") + n;
                                                                     return s;
                                                                 }() + ")");
    app.add_option("--compare", compare_opt, "A,B: run both on the same inputs, add ratio = time(B) / time(row)")
        ->excludes(be_opt);
    app.add_option("--kernel", kernels_opt, "kernel(s), comma list, or all: " + known_kernels);
    auto* m_opt = cli::add_int(app, "--m", z.m, "gemm M; rows of the row/column kernels and softmax batch", 1, 1LL << 30);
    cli::add_int(app, "--n", z.n, "gemm N; cols of the row/column kernels and softmax classes", 1, 1LL << 30);
    app.add_option("--layers", layers_opt, "train_step model widths (relu MLP, Adam; batch = --m, default 128)");
    cli::add_int(app, "--k", z.k, "gemm K", 1, 1LL << 30);
    cli::add_int(app, "--len", z.len, "length of the vector kernels (elements)", 1, 1LL << 34);
    cli::add_int(app, "--warmup", warmup, "untimed runs per kernel and backend", 0, 1000000);
    cli::add_int(app, "--reps", reps, "timed runs per kernel and backend", 1, 1000000);
    app.add_flag("--csv", csv, "print CSV instead of a table");
    app.add_flag("--no-check", no_check, "skip the check against the ref backend");
    app.add_option("--peak-gbs", peak_gbs, "GPU DRAM bandwidth peak for peak_pct (default: from the CUDA device)")
        ->check(cli::kPositive);
    app.add_option("--peak-gflops", peak_gflops, "GPU FP32 peak for peak_pct (default: from the CUDA device)")
        ->check(cli::kPositive);

    if (const auto rc = cli::parse(app, argc, argv, "ompml-bench")) return *rc;

    try {
        // Which kernels, which backends.
        std::vector<const KernelInfo*> kernels;
        for (const auto& name : split(kernels_opt)) {
            if (name == "all") {
                for (const auto& ki : kKernels) kernels.push_back(&ki);
                continue;
            }
            const auto* it = std::find_if(std::begin(kKernels), std::end(kKernels),
                                          [&](const KernelInfo& ki) { return name == ki.name; });
            require(it != std::end(kKernels), "unknown kernel '" + name + "' (known: " + known_kernels + ")");
            kernels.push_back(it);
        }
        require(!kernels.empty(), "--kernel is empty");
        const bool compare = !compare_opt.empty();
        const auto names = split(compare ? compare_opt : backends_opt);
        require(!names.empty(), "no backend given");
        require(!compare || names.size() == 2, "--compare takes exactly two backends, A,B; got '" + compare_opt + "'");
        require(!compare || names[0] != names[1], "--compare needs two different backends; got '" + compare_opt + "'");
        std::vector<std::unique_ptr<Backend>> backends;
        for (const auto& n : names) backends.push_back(make_backend(n)); // throws on an unknown name
        const std::unique_ptr<Backend> ref = make_backend("ref");
        const std::vector<int> layers = parse_layers(layers_opt);
        const long long step_batch = m_opt->count() ? z.m : 128;
        require(step_batch <= 2147483647, "train_step: --m must fit in an int");
        long long step_params = 0;
        for (const auto& v : mlp_layout(layers)) step_params += static_cast<long long>(v.count());
        for (const auto* ki : kernels)
            if (ki->shape == Shape::rows_cols)
                require(z.m <= 2147483647 / std::max(1LL, z.n) || ki->shape == Shape::mnk,
                        std::string(ki->name) + ": m * n must fit in an int");

        // The OpenBLAS anchor (gemm): which kernels it runs, said before any figure, with a
        // warning when OPENBLAS_CORETYPE holds it below what this CPU can do.
        std::string openblas_line; // "" when the anchor is not part of this run
#ifdef OMPML_WITH_OPENBLAS
        if (std::any_of(kernels.begin(), kernels.end(), [](const KernelInfo* ki) { return ki->shape == Shape::mnk; })) {
            const OpenblasInfo ob = openblas_info();
            openblas_line = openblas_text(ob);
            const std::string warn = openblas_core_warning(ob.core, ob.coretype.c_str(), ob.cpu);
            if (!warn.empty()) std::cerr << "ompml-bench: warning: " << warn << "\n";
        }
#endif

        // Where each row ran, before any figure (a host fallback is never called a GPU).
        std::map<std::string, std::string> device;
        std::map<std::string, bool> gpu; // which rows ran on a GPU
        for (const auto& b : backends) {
            gpu[b->name()] = b->on_gpu();
            std::string d = b->device();
            // on_gpu() is true only where kernels ran on a GPU (never on the host fallback or
            // the offload-check build's virtual x86 device).
            if (std::string(b->name()) != "ref") d += b->on_gpu() ? " [GPU]" : " [host cores, not a GPU]";
            device[b->name()] = d;
        }

        std::vector<Row> rows;
        for (const auto* ki : kernels) {
            const Sizes zs =
                ki->shape == Shape::step ? shape_of(*ki, {step_batch, step_params, 1, 0}) : shape_of(*ki, z);
            std::vector<std::vector<double>> want;
            if (!no_check) {
                const Prepared r = prepare(ki->name, *ref, zs, layers);
                r.once();
                want = r.result();
            }
            // Check every backend (and anchor) first, then time them: results before timings.
            std::vector<Job> jobs;
            std::map<std::string, std::vector<std::vector<double>>> got; // results, for max_diff
            auto add = [&](const std::string& name, Prepared p, std::function<void()> sync) {
                double err = NAN;
                // The compared pair runs once even with --no-check: max_diff needs no reference.
                if (!no_check || (compare && (name == names[0] || name == names[1]))) {
                    p.once();
                    sync();
                    got[name] = p.result();
                }
                if (!no_check) {
                    err = max_rel_err(got[name], want);
                    const double tol = tolerance(*ki, zs);
                    require(err <= tol, std::string(ki->name) + " on " + name + " does not match ref: max_rel_err " +
                                            fmt(err) + " > tolerance " + fmt(tol));
                }
                jobs.push_back({name, std::move(p), std::move(sync), err});
            };
            for (auto& b : backends) {
                Backend* bp = b.get();
                add(b->name(), prepare(ki->name, *b, zs, layers), [bp] { bp->synchronize(); });
            }
            for (auto& a : anchors_for(ki->name, zs)) {
                device[a.name] = a.device;
                gpu[a.name] = a.gpu;
                add(a.name, std::move(a.run), std::move(a.sync));
            }
            // The two compared backends against each other, normwise relative to B's result.
            const double diff = compare ? max_rel_err(got[names[0]], got[names[1]]) : NAN;
            for (auto& r : time_jobs(*ki, zs, jobs, warmup, reps)) {
                if (compare && (r.backend == names[0] || r.backend == names[1])) r.diff = diff;
                rows.push_back(std::move(r));
            }
        }

        // Ratio: time of the baseline row (B of --compare; else the anchor) over this row's.
        auto baseline = [&](const Row& r) -> const Row* {
            for (const auto& o : rows)
                if (o.kernel == r.kernel &&
                    (compare ? o.backend == names[1] : (o.backend == "openblas" || o.backend == "omp-parallel-for")))
                    return &o;
            return nullptr;
        };

        std::string dev_line;
        for (const auto& [n, d] : device) dev_line += (dev_line.empty() ? "" : "; ") + n + " = " + d;
        const Peak peak = device_peak(peak_gbs, peak_gflops);
        const std::string peak_line = peak.gbs > 0.0 || peak.gflops > 0.0
                                          ? fmt(peak.gbs, 4) + " GB/s, " + fmt(peak.gflops, 4) + " GFLOP/s FP32 (" +
                                                peak.source + ")"
                                          : "unknown (no CUDA device; --peak-gbs, --peak-gflops)";
        auto pct = [&](const Row& r) { return peak_pct(r, gpu[r.backend], peak); };
        if (csv) {
            std::cout << "# device: " << dev_line << "\n";
            std::cout << "# peak: " << peak_line << "\n";
            if (!openblas_line.empty()) std::cout << "# openblas: " << openblas_line << "\n";
            std::cout << kCsvHeader << (compare ? ",ratio,max_diff" : "") << "\n";
            for (const auto& r : rows) {
                const double s = r.min_ms * 1e-3;
                std::cout << r.kernel << ',' << r.backend << ',' << r.z.m << ',' << r.z.n << ',' << r.z.k << ','
                          << fmt(r.bytes, 9) << ',' << fmt(r.flops, 9) << ',' << fmt(r.min_ms) << ','
                          << fmt(r.avg_ms) << ',' << fmt(r.max_ms) << ',' << fmt(r.flops / s * 1e-9) << ','
                          << fmt(r.bytes / s * 1e-9) << ',' << fmt(r.err, 2) << ',' << fmt(pct(r), 2);
                if (compare) {
                    const Row* b = baseline(r);
                    std::cout << ',' << (b ? fmt(b->min_ms / r.min_ms) : "nan") << ',' << fmt(r.diff, 2);
                }
                std::cout << '\n';
            }
        } else {
            for (const auto& [n, d] : device) std::printf("device  %-17s %s\n", n.c_str(), d.c_str());
            std::printf("peak    %s\n", peak_line.c_str());
            if (!openblas_line.empty()) std::printf("openblas %s\n", openblas_line.c_str());
            std::printf("timing  %d warm-up run(s) dropped, %d timed; GFLOP/s and GB/s from the minimum time\n",
                        warmup, reps);
            std::printf("\n%-16s %-17s %-17s %10s %10s %10s %9s %9s %7s %9s %8s%s\n", "kernel", "backend", "shape",
                        "min ms", "avg ms", "max ms", "GFLOP/s", "GB/s", "% peak", "rel err",
                        compare ? ("x " + names[1]).c_str() : "x anchor", compare ? "  max diff" : "");
            for (const auto& r : rows) {
                const double s = r.min_ms * 1e-3;
                const Row* b = baseline(r);
                const std::string shp = std::to_string(r.z.m) + "x" + std::to_string(r.z.n) +
                                        (r.z.k > 1 ? "x" + std::to_string(r.z.k) : "");
                const double p = pct(r);
                std::printf("%-16s %-17s %-17s %10.4f %10.4f %10.4f %9.2f %9.2f %7s %9s %8s%s\n", r.kernel.c_str(),
                            r.backend.c_str(), r.z.n == 1 ? std::to_string(r.z.m).c_str() : shp.c_str(), r.min_ms,
                            r.avg_ms, r.max_ms, r.flops / s * 1e-9, r.bytes / s * 1e-9,
                            std::isnan(p) ? "-" : fmt(p, 0).c_str(), std::isnan(r.err) ? "-" : fmt(r.err, 1).c_str(),
                            b && b != &r ? fmt(b->min_ms / r.min_ms, 1).c_str() : "",
                            compare ? ("  " + (std::isnan(r.diff) ? std::string("-") : fmt(r.diff, 1))).c_str() : "");
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "ompml-bench: error: " << e.what() << "\n";
        return 1;
    }
}
