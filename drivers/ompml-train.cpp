// ompml-train: trains an MLP on an HDF5 dataset (data/README.md schema) and reports progress.
// This file only wires things: flags -> TrainConfig, Loader -> BatchSource, Trainer hooks ->
// console, metrics log and checkpoints. The loop itself is ompml::Trainer (lib/nn/trainer.hpp).
//
//   ompml-train --data data/fashion-mnist.h5 --layers 784,512,256,10 --activation relu \
//               --epochs 10 --batch 128 --optimizer adam --lr 1e-3 --seed 1 --backend omp
//   mpirun -np 4 ompml-train ...          (data parallel: --batch is the global batch)
//
// Resume (--resume FILE | auto): model, optimizer, schedule, seed and batch come from the
// checkpoint (an explicitly given flag that disagrees is an error); --epochs may extend the
// run; --data defaults to the checkpoint's dataset path. Any rank count may resume any
// checkpoint. `auto` tries --checkpoint FILE, then FILE.prev (jobs/README.md).
//
// Data parallelism (MPI; without mpirun it runs as a 1-rank singleton): every rank binds its
// device, builds the same configuration (agreed on collectively), opens the dataset
// (collectively: one rank's failure stops all with its message), starts from rank 0's
// parameters and trains on its slice of each global batch; MpiComm sums the gradients in
// buckets overlapped with backward. Only rank 0 prints, writes metrics and checkpoints.
//
// Errors: a failure every rank sees (CollectiveError) ends every rank through the normal path;
// a failure on one rank only ends the job through abort_all (MPI_Abort), never a hang.
//
// Preemption (jobs/README.md): SIGUSR1 or SIGTERM sets a flag; at every step boundary the ranks
// reduce it (one allreduce of an int: a signal is acted on within one step), write the
// checkpoint and exit kExitCheckpointed (85) on every rank.
//
// Test-only environment (used by tests/mpi/, not for users):
//   OMPML_FAULT_INJECT=RANK:STEP:exit|kill   after step STEP, rank RANK throws an error that
//                                            only it sees (exit) or SIGKILLs itself (kill)
//   OMPML_TEST_PER_RANK_DATA=1               "%r" in --data becomes the rank number, to give
//                                            one rank a dataset path the others do not have
//   OMPML_TEST_HOLD_AT_STEP=N                after step N (and its checkpoint, if one is due)
//                                            print "test hold: step N, waiting for a stop
//                                            signal" and wait for SIGUSR1/SIGTERM on any rank,
//                                            so a signal test can never finish before its signal
#include "backend/backend.hpp"
#include "cli.hpp"
#include "core/check.hpp"
#include "core/parse_int.hpp"
#include "core/timer.hpp"
#include "parallel/comm.hpp"
#include "parallel/mpi_comm.hpp"
#include "io/checkpoint.hpp"
#include "io/loader.hpp"
#include "io/metrics.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/trainer.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace {

using namespace ompml;

// "Stopped on SIGUSR1 (or SIGTERM) after writing the checkpoint: please requeue". The batch
// scripts read it (jobs/lib/common.sh OMPML_EXIT_CHECKPOINTED, jobs/README.md).
constexpr int kExitCheckpointed = 85;

// The signal that asked us to stop (0: none). Set by the handler, read at step boundaries.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only touch lock-free atomics");

extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// Installed right after MPI_Init (which may install handlers of its own) and before any step.
// SA_RESTART: a read or wait interrupted by the signal carries on; the flag is seen later.
void install_stop_handlers()
{
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// OMPML_FAULT_INJECT=RANK:STEP:exit|kill (test-only, see the top of this file).
struct FaultInject {
    int rank = -1;
    std::int64_t step = -1;
    std::string mode;
};
FaultInject fault_from_env()
{
    FaultInject f;
    const char* v = std::getenv("OMPML_FAULT_INJECT");
    if (v == nullptr || *v == '\0') return f;
    const std::string s = v;
    const auto c1 = s.find(':'), c2 = s.find(':', c1 == std::string::npos ? c1 : c1 + 1);
    try {
        if (c1 == std::string::npos || c2 == std::string::npos) throw std::invalid_argument(s);
        f.rank = std::stoi(s.substr(0, c1));
        f.step = std::stoll(s.substr(c1 + 1, c2 - c1 - 1));
        f.mode = s.substr(c2 + 1);
    } catch (const std::exception&) {
        f.mode.clear();
    }
    if (f.mode != "exit" && f.mode != "kill")
        throw Error("OMPML_FAULT_INJECT='" + s + "': expected RANK:STEP:exit|kill");
    return f;
}

// OMPML_TEST_HOLD_AT_STEP=N (test-only, see the top of this file); -1 when unset.
std::int64_t hold_step_from_env()
{
    const char* v = std::getenv("OMPML_TEST_HOLD_AT_STEP");
    std::int64_t step = -1;
    if (v == nullptr || *v == '\0') return step;
    const std::string err = parse_int(std::string_view(v), step, std::int64_t{1});
    if (!err.empty()) throw Error("OMPML_TEST_HOLD_AT_STEP: " + err);
    return step;
}

struct Args {
    std::string data = "data/fashion-mnist.h5";
    std::string layers = "784,512,256,10";
    std::string activation = "relu";
    std::string optimizer = "adam";
    std::string schedule = "constant";
    std::string backend = "omp";
    int epochs = 10;
    int batch = 128;
    int eval_batch = 1000;
    double lr = 1e-3;
    double momentum = 0.9;
    double weight_decay = -1.0; // unset: 0, or 0.01 for adamw (PyTorch's defaults)
    std::int64_t warmup = 0;
    std::int64_t step_size = 0;
    int step_epochs = 0;
    double gamma = 0.1;
    double clip = 0.0;
    std::uint64_t seed = 1;
    std::int64_t max_steps = 0;
    std::int64_t checkpoint_every = 0;
    std::string metrics, checkpoint, resume;
    bool streaming = false;
    bool mpi_staging = false;
    double bucket_mb = GradSyncOptions{}.bucket_mb; // the library default (grad_sync.hpp)
    std::string grad_transport = "auto";
    std::string streaming_reads = "auto";
};

std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string duration(double s)
{
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 120) return fmt("%.0f s", s);
    if (s < 7200) return fmt("%.1f min", s / 60);
    return fmt("%.1f h", s / 3600);
}

// Parse errors read "layers '7,x': ..."; prefixed with "--" they name the flag.
template <class F>
auto parse_flag(F&& f) -> decltype(f())
{
    try {
        return f();
    } catch (const Error& e) {
        throw Error(std::string("--") + e.what());
    }
}

// On resume: a flag given explicitly must agree with the checkpoint.
void same_as_checkpoint(const CLI::App& app, const char* flag, const std::string& given, const std::string& stored)
{
    if (app.count(flag) > 0 && given != stored)
        throw Error(std::string(flag) + " " + given + " conflicts with the checkpoint's " + stored +
                    " (a resumed run keeps its settings)");
}

int run(const MpiSession& mpi, int argc, char** argv)
{
    Args a;
    CLI::App app{"ompml-train: train an MLP with OpenMP target offload kernels"};
    app.option_defaults()->always_capture_default();
    app.add_option("--data", a.data,
                   "dataset file (HDF5, data/README.md); make the default with "
                   "`ompml-data import-idx /usr/share/datasets/fashion-mnist -o data/fashion-mnist.h5`");
    app.add_option("--layers", a.layers, "widths: input,hidden...,classes");
    app.add_option("--activation", a.activation, "hidden activation: relu | tanh | gelu");
    cli::add_int(app, "--epochs", a.epochs, "epochs to train (in total, counting resumed ones)", 1);
    cli::add_int(app, "--batch", a.batch, "global batch size", 1);
    cli::add_int(app, "--eval-batch", a.eval_batch, "batch size for evaluation", 1);
    app.add_option("--optimizer", a.optimizer, "sgd | adam | adamw");
    app.add_option("--lr", a.lr, "base learning rate")->check(cli::kPositive);
    app.add_option("--momentum", a.momentum, "SGD momentum")->check(cli::kFinite)->check(CLI::Range(0.0, 1.0));
    app.add_option("--weight-decay", a.weight_decay, "weight decay (default 0; 0.01 for adamw)")
        ->check(cli::kNonNegative)
        ->capture_default_str();
    app.add_option("--schedule", a.schedule, "lr schedule: constant | step | cosine");
    cli::add_int(app, "--warmup", a.warmup, "linear warmup steps", 0);
    cli::add_int(app, "--step-size", a.step_size, "step schedule: decay every N steps", 0);
    cli::add_int(app, "--step-epochs", a.step_epochs, "step schedule: decay every N epochs", 0);
    app.add_option("--gamma", a.gamma, "step schedule: decay factor")->check(cli::kPositive);
    app.add_option("--clip", a.clip, "clip gradients to this global L2 norm (0: off)")->check(cli::kNonNegative);
    cli::add_int(app, "--seed", a.seed, "seed of init and shuffle");
    app.add_option("--backend", a.backend, "kernel backend: " + [] {
        std::string s;
        for (const auto& n : available_backends()) s += (s.empty() ? "" : " | ") + n;
        return s;
    }());
    cli::add_int(app, "--max-steps", a.max_steps, "stop after this many steps in total (0: no limit)", 0);
    app.add_option("--metrics", a.metrics, "append one JSON line per epoch to this file");
    app.add_option("--checkpoint", a.checkpoint, "write checkpoints to this file (at the end, and see --checkpoint-every)");
    cli::add_int(app, "--checkpoint-every", a.checkpoint_every, "also checkpoint every N steps", 0);
    app.add_option("--resume", a.resume,
                   "resume from this checkpoint; 'auto': from --checkpoint FILE or FILE.prev if valid, "
                   "else start fresh");
    app.add_flag("--streaming", a.streaming, "read batches from the file instead of holding the split in memory");
    app.add_option("--streaming-reads", a.streaming_reads,
                   "with --streaming on several ranks: collective (MPI-IO, all ranks in one read), independent, "
                   "or auto (collective unless the images are compressed; data/README.md)")
        ->check(CLI::IsMember({"auto", "collective", "independent"}));
    app.add_flag("--mpi-staging", a.mpi_staging,
                 "copy gradients through host memory for MPI even where MPI could read device memory");
    app.add_option("--bucket-mb", a.bucket_mb,
                   "gradient allreduce bucket size in MB (started during backward); 0: one bucket per step")
        ->check(cli::kNonNegative);
    app.add_option("--grad-transport", a.grad_transport,
                   "how ranks sum gradients: shm (shared memory, all ranks on one node, host memory), mpi "
                   "(MPI_Iallreduce buckets) or auto (shm where possible, else mpi)")
        ->check(CLI::IsMember({"auto", "mpi", "shm"}));
    const bool is_root = mpi.root();
    // Every rank parses the same command line: the root alone reports it.
    if (const auto rc = cli::parse(app, argc, argv, "ompml-train", is_root)) return *rc;
    if (a.checkpoint_every > 0 && a.checkpoint.empty())
        throw CollectiveError("--checkpoint-every " + std::to_string(a.checkpoint_every) + " needs --checkpoint FILE",
                              -1, 0);
    if (a.step_size > 0 && a.step_epochs > 0)
        throw CollectiveError("--step-size and --step-epochs are exclusive", -1, 0);
    if (a.resume == "auto" && a.checkpoint.empty())
        throw CollectiveError("--resume auto needs --checkpoint FILE (it resumes from FILE or FILE.prev)", -1, 0);
    const FaultInject fault = fault_from_env();
    const std::int64_t hold_step = hold_step_from_env();
    // Before anything is read or trained: --checkpoint must not name a file that is not ours
    // (the dataset, a text file, a directory); rank 0 writes it, every rank stops on a refusal.
    if (!a.checkpoint.empty())
        collective_try(mpi, [&] {
            if (is_root) parse_flag([&] { check_checkpoint_target(a.checkpoint); }); // "--checkpoint F ..."
        });

    // Before the backend is made: omp memory allocates on the default OpenMP device, the cuda
    // backend on the current CUDA device. Every backend binds by the same rule (local rank %
    // devices); a failure (cudaSetDevice) stops every rank with its message.
    DeviceBinding binding;
    collective_try(mpi, [&] { binding = mpi.bind_device(a.backend); });

    // ---- which checkpoint to resume from (collective: every rank reads the same file) ----
    std::optional<Checkpoint> ck;
    std::string resume_path;
    if (a.resume == "auto") {
        const std::vector<std::string> candidates{a.checkpoint, a.checkpoint + ".prev"};
        bool any_present = false;
        for (const std::string& c : candidates) {
            std::error_code ec;
            if (!any_rank(mpi.comm(), std::filesystem::exists(c, ec))) continue;
            any_present = true;
            try {
                collective_try(mpi, [&] { ck = read_checkpoint(c); });
                resume_path = c;
                break;
            } catch (const Error& e) { // every rank: a CollectiveError, or the one rank's Error
                ck.reset();
                if (is_root) std::fprintf(stderr, "ompml-train: warning: --resume auto: rejected %s: %s\n", c.c_str(), e.what());
            }
        }
        if (!ck && any_present)
            throw CollectiveError("--resume auto: no valid checkpoint: " + candidates[0] + " and " + candidates[1] +
                                      " are both unusable (see the warnings above)",
                                  -1, 0);
        if (is_root) {
            if (ck)
                std::printf("ompml-train: --resume auto: resuming from %s\n", resume_path.c_str());
            else
                std::printf("ompml-train: --resume auto: no checkpoint at %s or %s: starting fresh\n",
                            candidates[0].c_str(), candidates[1].c_str());
            std::fflush(stdout);
        }
    } else if (!a.resume.empty()) {
        collective_try(mpi, [&] { ck = read_checkpoint(a.resume); });
        resume_path = a.resume;
    }

    // ---- configuration: flags, or the checkpoint when resuming ----
    // Errors here (bad values, flags that contradict the checkpoint) are the same on every rank.
    TrainConfig cfg;
    TrainState start;
    collective_try(mpi, [&] {
    if (ck) {
        cfg = ck->config;
        start = ck->state;
        same_as_checkpoint(app, "--layers", layers_string(parse_flag([&] { return parse_layers(a.layers); })),
              layers_string(cfg.model.layers));
        same_as_checkpoint(app, "--activation", a.activation, enum_name(cfg.model.activation));
        same_as_checkpoint(app, "--optimizer", a.optimizer, enum_name(cfg.opt.kind));
        same_as_checkpoint(app, "--schedule", a.schedule, enum_name(cfg.sched.kind));
        same_as_checkpoint(app, "--lr", fmt("%g", a.lr), fmt("%g", cfg.opt.lr));
        same_as_checkpoint(app, "--batch", std::to_string(a.batch), std::to_string(cfg.batch));
        same_as_checkpoint(app, "--seed", std::to_string(a.seed), std::to_string(cfg.seed));
        if (app.count("--epochs") > 0) cfg.epochs = a.epochs;
        if (app.count("--data") == 0) a.data = ck->data.path;
    } else {
        cfg.model.layers = parse_flag([&] { return parse_layers(a.layers); });
        cfg.model.activation = parse_flag([&] { return parse_enum<Act>(a.activation); });
        cfg.opt.kind = parse_flag([&] { return parse_enum<OptKind>(a.optimizer); });
        cfg.opt.lr = static_cast<float>(a.lr);
        cfg.opt.momentum = static_cast<float>(a.momentum);
        cfg.opt.weight_decay =
            static_cast<float>(a.weight_decay >= 0 ? a.weight_decay : (cfg.opt.kind == OptKind::adamw ? 0.01 : 0.0));
        cfg.sched.kind = parse_flag([&] { return parse_enum<SchedKind>(a.schedule); });
        cfg.sched.warmup = a.warmup;
        cfg.sched.step_size = a.step_size;
        cfg.sched.gamma = static_cast<float>(a.gamma);
        cfg.clip = static_cast<float>(a.clip);
        cfg.seed = a.seed;
        cfg.batch = a.batch;
        cfg.epochs = a.epochs;
        cfg.eval_batch = a.eval_batch;
    }
    });
    if (std::getenv("OMPML_TEST_PER_RANK_DATA") != nullptr) // test-only, see the top of this file
        for (std::size_t p; (p = a.data.find("%r")) != std::string::npos;)
            a.data.replace(p, 2, std::to_string(mpi.rank()));

    // ---- backend and data (collective: a file only some ranks can open stops every rank) ----
    std::unique_ptr<Backend> be;
    std::unique_ptr<Loader> train_loader, test_loader;
    collective_try(mpi, [&] {
        be = make_backend(a.backend);
        LoaderOptions lo;
        lo.path = a.data;
        lo.global_batch = cfg.batch;
        lo.rank = mpi.rank();
        lo.nranks = mpi.size();
        lo.seed = cfg.seed;
        lo.streaming = a.streaming;
        // Streaming reads are collective over all ranks where possible (io/loader.hpp); every
        // rank must choose alike, so the choice is a flag the ranks agree on.
        lo.comm = mpi.comm();
        lo.reads = parse_enum<StreamReads>(a.streaming_reads);
        train_loader = std::make_unique<Loader>(*be, lo);
        LoaderOptions to = lo;
        to.split = Split::test;
        to.global_batch = cfg.eval_batch;
        to.shuffle = false;
        test_loader = std::make_unique<Loader>(*be, to);
        const DatasetInfo& ds = train_loader->dataset();
        require_features(ds, static_cast<std::uint64_t>(cfg.model.layers.front()));
        if (ds.classes != cfg.model.layers.back())
            throw Error("--layers " + layers_string(cfg.model.layers) + ": the last width " +
                        std::to_string(cfg.model.layers.back()) + " must equal the dataset's " +
                        std::to_string(ds.classes) + " classes (" + a.data + ")");
        if (ck && ck->data.features != ds.features)
            throw Error("--data " + a.data + ": " + std::to_string(ds.features) +
                        " features, the checkpoint was trained on " + std::to_string(ck->data.features));
    });
    const DatasetInfo& ds = train_loader->dataset();
    const std::int64_t spe = train_loader->steps_per_epoch();
    if (a.step_epochs > 0 && !ck) cfg.sched.step_size = static_cast<std::int64_t>(a.step_epochs) * spe;
    if (!ck) cfg.sched = Trainer::resolve_schedule(cfg, spe); // fixes the cosine length in the checkpoint
    if (cfg.sched.kind == SchedKind::step && cfg.sched.step_size <= 0)
        throw CollectiveError("--schedule step needs --step-size N or --step-epochs N", -1, 0);
    DataDesc data{a.data, ds.features, ds.classes, train_loader->samples(), test_loader->samples()};

    // ---- every rank must run the same configuration (a mismatch stops all, naming it) ----
    if (mpi.size() > 1) {
        const auto num = [](double v) { return fmt("%.9g", v); };
        agree(mpi.comm(),
              {{"layers", layers_string(cfg.model.layers)},
               {"activation", enum_name(cfg.model.activation)},
               {"seed", std::to_string(cfg.seed)},
               {"global batch", std::to_string(cfg.batch)},
               {"eval batch", std::to_string(cfg.eval_batch)},
               {"epochs", std::to_string(cfg.epochs)},
               {"optimizer", std::string(enum_name(cfg.opt.kind)) + " lr " + num(cfg.opt.lr) + " momentum " +
                                 num(cfg.opt.momentum) + " weight_decay " + num(cfg.opt.weight_decay)},
               {"schedule", std::string(enum_name(cfg.sched.kind)) + " warmup " + std::to_string(cfg.sched.warmup) +
                                " step_size " + std::to_string(cfg.sched.step_size) + " gamma " +
                                num(cfg.sched.gamma) + " total " + std::to_string(cfg.sched.total_steps)},
               {"clip", num(cfg.clip)},
               {"dataset shape", "features " + std::to_string(data.features) + " classes " +
                                     std::to_string(data.classes) + " train " + std::to_string(data.train_samples) +
                                     " test " + std::to_string(data.test_samples)},
               {"backend", a.backend},
               {"streaming", a.streaming ? "on, reads " + a.streaming_reads : std::string("off")},
               {"resume", ck ? resume_path + " at step " + std::to_string(start.step) : std::string("fresh start")},
               {"max steps", std::to_string(a.max_steps)},
               {"checkpoint every", std::to_string(a.checkpoint_every)},
               // The bucket layout decides the sequence of reductions: it must match everywhere.
               {"bucket MB", num(a.bucket_mb)},
               {"gradient transport", a.grad_transport}});
    }

    // ---- model and optimizer; every rank starts from rank 0's parameters ----
    std::unique_ptr<Mlp> model_p;
    std::unique_ptr<Optimizer> opt_p;
    collective_try(mpi, [&] {
        model_p = std::make_unique<Mlp>(*be, cfg.model, std::max(train_loader->max_rows(), test_loader->max_rows()));
        opt_p = std::make_unique<Optimizer>(*be, cfg.opt, model_p->num_params());
        if (ck)
            restore_checkpoint(*ck, *model_p, opt_p.get());
        else
            model_p->init_params(cfg.seed);
    });
    Mlp& model = *model_p;
    Optimizer& opt = *opt_p;
    ck.reset(); // the host copy is no longer needed (it can be large)
    // Every rank computed the same values (same seed or the same checkpoint, agreed above);
    // the broadcast makes "identical" hold by construction, whatever the rank's history.
    broadcast(mpi.comm(), be->memory(), model.params(), model.num_params());

    GradSyncOptions gso;
    gso.bucket_mb = a.bucket_mb;
    gso.force_staging = a.mpi_staging;
    gso.gpu_memory = be->on_gpu();
    gso.transport = parse_enum<GradTransport>(a.grad_transport);
    // Every rank takes the same transport decision, so an error ("shm is not possible here")
    // is the same everywhere; the communicator owns the gradient buffer backward writes.
    std::unique_ptr<MpiComm> comm_p;
    collective_try(mpi, [&] { comm_p = std::make_unique<MpiComm>(mpi.comm(), *be, model.num_params(), gso); });
    MpiComm& comm = *comm_p;
    model.use_grad_buffer(comm.grads());

    // ---- start-up report: configuration, ranks, nodes, devices ----
    const bool resumed = !resume_path.empty();
    const int nodes = [&] {
        double first_on_node = mpi.local_rank() == 0 ? 1.0 : 0.0;
        allreduce_sum(mpi.comm(), &first_on_node, 1);
        return static_cast<int>(first_on_node);
    }();
    const std::vector<std::string> where = gather_strings(mpi.comm(), mpi.processor() + ", " + binding.describe());
    if (is_root) {
        std::printf("ompml-train: backend %s on %s\n", be->name(), be->device().c_str());
        const std::string buckets = comm.averager().shared_memory() ? std::string()
                                    : a.bucket_mb > 0       ? ", bucket " + fmt("%g MB", a.bucket_mb)
                                                            : std::string(", one bucket per step");
        std::printf("  mpi       %d ranks on %d nodes, gradients: %s%s\n", mpi.size(), nodes,
                    comm.averager().transport().c_str(), buckets.c_str());
        const int shown = std::min(mpi.size(), 8);
        for (int r = 0; r < shown; ++r) std::printf("  rank %-4d %s\n", r, where[static_cast<std::size_t>(r)].c_str());
        if (shown < mpi.size()) std::printf("  ... (%d more ranks)\n", mpi.size() - shown);
        std::printf("  data      %s: train %llu, test %llu, features %llu, classes %d%s\n", a.data.c_str(),
                    static_cast<unsigned long long>(data.train_samples),
                    static_cast<unsigned long long>(data.test_samples),
                    static_cast<unsigned long long>(data.features), data.classes,
                    a.streaming ? (" (streaming, " + train_loader->read_mode() + ")").c_str() : "");
        std::printf("  model     %s %s, %zu parameters\n", layers_string(cfg.model.layers).c_str(),
                    enum_name(cfg.model.activation), model.num_params());
        std::printf("  optimizer %s lr %g weight_decay %g%s, schedule %s (warmup %lld", enum_name(cfg.opt.kind),
                    cfg.opt.lr, cfg.opt.weight_decay,
                    cfg.opt.kind == OptKind::sgd ? fmt(" momentum %g", cfg.opt.momentum).c_str() : "",
                    enum_name(cfg.sched.kind), static_cast<long long>(cfg.sched.warmup));
        if (cfg.sched.kind == SchedKind::step)
            std::printf(", gamma %g every %lld steps", cfg.sched.gamma, static_cast<long long>(cfg.sched.step_size));
        if (cfg.sched.kind == SchedKind::cosine)
            std::printf(", over %lld steps", static_cast<long long>(cfg.sched.total_steps));
        std::printf("), clip %s\n", cfg.clip > 0 ? fmt("%g", cfg.clip).c_str() : "off");
        std::printf("  run       epochs %d, batch %d (%lld steps/epoch, %d per rank), seed %llu, ranks %d", cfg.epochs,
                    cfg.batch, static_cast<long long>(spe), train_loader->max_rows(),
                    static_cast<unsigned long long>(cfg.seed), mpi.size());
        if (a.max_steps > 0) std::printf(", max-steps %lld", static_cast<long long>(a.max_steps));
        std::printf("\n");
        if (resumed)
            std::printf("  resume    %s at step %lld (epoch %lld, step %lld in it)\n", resume_path.c_str(),
                        static_cast<long long>(start.step), static_cast<long long>(start.epoch),
                        static_cast<long long>(start.step_in_epoch));
        if (!a.checkpoint.empty())
            std::printf("  checkpoint %s%s (previous kept as %s.prev)\n", a.checkpoint.c_str(),
                        a.checkpoint_every > 0
                            ? (" every " + std::to_string(a.checkpoint_every) + " steps and at the end").c_str()
                            : " at the end",
                        a.checkpoint.c_str());
        std::fflush(stdout);
    }

    std::unique_ptr<MetricsLog> metrics;
    if (is_root && !a.metrics.empty()) metrics = std::make_unique<MetricsLog>(a.metrics, resumed);

    // ---- hooks: console, metrics, checkpoints (root only); the stop flag (all ranks) ----
    const std::int64_t total_steps = a.max_steps > 0 ? std::min<std::int64_t>(a.max_steps, cfg.epochs * spe)
                                                     : static_cast<std::int64_t>(cfg.epochs) * spe;
    // Live progress only for an interactive single process: mpirun gives every rank a pty even
    // when its own output goes to a file, which would fill logs with carriage returns.
    const bool live = is_root && mpi.size() == 1 && std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr &&
                      isatty(fileno(stdout));
    double last_live = -1.0;
    double rate = 0.0;            // samples/s of the last epoch, for the ETA
    double flag_s = 0.0;          // time in the stop-flag reductions (communication too)
    double comm_at_epoch = 0.0;   // communication seconds when the last epoch report was made
    const auto comm_s = [&] { return comm.comm_seconds() + flag_s; };
    Hooks hooks;
    hooks.on_step = [&](const StepReport& r) {
        if (fault.rank == mpi.rank() && fault.step == r.step) {
            if (fault.mode == "kill") std::raise(SIGKILL);
            throw Error("OMPML_FAULT_INJECT: rank " + std::to_string(mpi.rank()) + " fails on purpose after step " +
                        std::to_string(r.step));
        }
        if (!live || r.epoch_seconds - last_live < 0.25) return;
        last_live = r.epoch_seconds;
        const double sps = r.epoch_seconds > 0 ? r.epoch_samples / r.epoch_seconds : 0.0;
        const double eta = sps > 0 ? static_cast<double>(total_steps - r.step) * cfg.batch / sps : NAN;
        std::printf("\r  epoch %lld/%d step %lld/%lld loss %.4f %.0f samples/s ETA %s   ",
                    static_cast<long long>(r.epoch + 1), cfg.epochs, static_cast<long long>(r.step_in_epoch),
                    static_cast<long long>(r.steps_per_epoch), r.loss, sps, duration(eta).c_str());
        std::fflush(stdout);
    };
    hooks.on_epoch = [&](const EpochReport& r) {
        rate = r.samples_per_s;
        // Communication vs the rest of this epoch's training time (evaluation excluded).
        const double ep_comm = comm_s() - comm_at_epoch;
        comm_at_epoch = comm_s();
        const double ep_compute = std::max(0.0, r.seconds - ep_comm);
        if (metrics) {
            MetricsRecord m{r.epoch, r.step, r.train_loss, r.test_loss, r.test_acc, r.lr,
                            r.total_seconds, r.samples_per_s, {}};
            m.extra = {{"comm_s", ep_comm}, {"compute_s", ep_compute}, {"ranks", static_cast<double>(mpi.size())}};
            metrics->write(m);
        }
        if (!is_root) return;
        const double eta = rate > 0 ? static_cast<double>(total_steps - r.step) * cfg.batch / rate : NAN;
        if (live) std::printf("\r%100s\r", "");
        std::printf("epoch %lld/%d step %lld train_loss %.4f test_loss %.4f test_acc %.4f lr %.3g %.0f samples/s "
                    "compute %.2f s comm %.2f s ETA %s\n",
                    static_cast<long long>(r.epoch), cfg.epochs, static_cast<long long>(r.step), r.train_loss,
                    r.test_loss, r.test_acc, static_cast<double>(r.lr), r.samples_per_s, ep_compute, ep_comm,
                    duration(eta).c_str());
        std::fflush(stdout);
        last_live = -1.0;
    };
    hooks.on_checkpoint = [&](const TrainState& s) {
        if (!is_root || a.checkpoint.empty()) return;
        save_checkpoint(a.checkpoint, cfg, data, s, model, opt, /*keep_previous=*/true);
    };
    hooks.should_stop = [&](const TrainState& s) {
        if (s.step == hold_step) { // test-only: wait here for the signal the test sends
            if (is_root) std::printf("test hold: step %lld, waiting for a stop signal\n", static_cast<long long>(s.step));
            std::fflush(stdout);
            while (!comm.any(g_stop_signal.load() != 0)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            return true;
        }
        const Stopwatch t;
        const bool stop = comm.any(g_stop_signal.load() != 0);
        flag_s += t.seconds();
        return stop;
    };

    RunLimits limits;
    limits.max_steps = a.max_steps;
    limits.checkpoint_every = a.checkpoint_every;
    Trainer trainer(*be, cfg, model, opt, comm);
    const std::int64_t first_step = start.step;
    const TrainResult res = trainer.run(*train_loader, test_loader.get(), start, limits, hooks);

    if (is_root) {
        if (live) std::printf("\r%100s\r", "");
        const std::int64_t steps = res.state.step - first_step;
        const GradSyncStats& gs = comm.averager().total();
        // This process's training time: whole epochs reported plus the unfinished part.
        const double trained = res.state.elapsed_s - start.elapsed_s;
        const double c = comm_s();
        if (steps > 0)
            std::printf("time: %lld steps in %.2f s: compute %.2f s, communication %.2f s (%.1f%%; exposed wait "
                        "%.2f s, staging copies %.2f s; %.2f ms/step), %d ranks\n",
                        static_cast<long long>(steps), trained, std::max(0.0, trained - c), c,
                        trained > 0 ? 100.0 * c / trained : 0.0, gs.wait_s, gs.copy_s, 1e3 * c / steps, mpi.size());
        if (res.interrupted) {
            const int sig = g_stop_signal.load();
            std::printf("stopped by %s at step %lld: %s; exit %d (continue with --resume auto)\n",
                        sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal on another rank",
                        static_cast<long long>(res.state.step),
                        a.checkpoint.empty() ? "no --checkpoint given, nothing saved"
                                             : ("checkpoint " + a.checkpoint + " written").c_str(),
                        kExitCheckpointed);
        } else {
            std::printf("final: test_acc %.4f test_loss %.4f epochs %lld steps %lld time %.1f s%s\n",
                        res.test.accuracy, res.test.loss, static_cast<long long>(res.state.epoch),
                        static_cast<long long>(res.state.step), res.seconds,
                        res.stopped_early ? " (stopped by --max-steps)" : "");
            if (!a.checkpoint.empty()) std::printf("checkpoint: %s\n", a.checkpoint.c_str());
        }
        std::fflush(stdout);
    }
    return res.interrupted ? kExitCheckpointed : 0;
}

} // namespace

int main(int argc, char** argv)
{
    // The session lives outside the body: an error on one rank must reach abort_all before
    // MPI_Finalize, which would wait for ranks that are blocked in a collective.
    MpiSession mpi(&argc, &argv);
    install_stop_handlers();
    return run_on_every_rank(mpi, "ompml-train", [&] { return run(mpi, argc, argv); });
}
