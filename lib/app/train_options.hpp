// How ompml-train runs, as opposed to what it trains (nn/settings.hpp): where the data and the
// checkpoints are, which backend, how the ranks sum gradients, when to stop. None of these is
// stored in checkpoints (Store::run_only); those that decide the sequence of collective calls
// must agree across ranks. Described once each, as the training settings are; the flags, the
// agreement and the start-up report come from this table.
#pragma once

#include "core/precision.hpp"
#include "core/setting.hpp"
#include "io/loader.hpp"
#include "parallel/grad_sum.hpp"

#include <cstdint>
#include <string>

namespace ompml {

struct TrainOptions {
    std::string data = "data/fashion-mnist.h5";
    std::string backend = "omp";
    std::int64_t max_steps = 0;        // 0: no limit
    std::string checkpoint;            // "": none
    bool keep_best = false;            // also keep the checkpoint of the best validation loss
    std::int64_t checkpoint_every = 0; // 0: only at the end
    std::string resume;                // "", a file, or "auto"
    std::string metrics;               // "": none
    std::int64_t metrics_every = 0;    // also a "step" record every N steps (0: none)
    std::int64_t log_every = 0;        // a progress line every N steps (0: every kLogSeconds, see the console)
    int step_epochs = 0;               // step schedule in epochs: becomes step_size at a fresh start
    bool streaming = false;
    StreamReads streaming_reads = StreamReads::automatic;
    bool mpi_staging = false;
    double bucket_mb = GradSumOptions{}.bucket_mb; // the library default (parallel/grad_sum.hpp)
    GradTransport grad_transport = GradTransport::automatic;
    MpiFp32Sum mpi_fp32_sum = MpiFp32Sum::automatic;
    Precision grad_dtype = Precision::fp32;
    std::string trace;       // "": none
    std::string trace_steps; // "A:B" (1-based, inclusive); "": every step
};

template <class F>
void for_each_train_option(F&& f)
{
    using enum Store;
    f(Spec{.flag = "--data",
           .key = "data",
           .help = "dataset file (HDF5, data/README.md); make the default with "
                   "`ompml-data import-idx /usr/share/datasets/fashion-mnist -o "
                   "data/fashion-mnist.h5`",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(data));
    f(Spec{.flag = "--backend",
           .key = "backend",
           .help = "kernel backend (ompml-train --help lists this build's)",
           .store = run_only},
      OMPML_FIELD(backend));
    f(Spec{.flag = "--max-steps",
           .key = "max_steps",
           .group = "run",
           .help = "stop after this many steps in total (0: no limit)",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(max_steps));
    f(Spec{.flag = "--checkpoint",
           .key = "checkpoint",
           .help = "write checkpoints to this file (at the end, and see --checkpoint-every)",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(checkpoint));
    f(Spec{.flag = "--keep-best",
           .key = "keep_best",
           .help = "with --checkpoint FILE and a validation split: also keep the checkpoint of the lowest validation "
                   "loss so far, as FILE.best.h5 (FILE.best when FILE does not end in .h5)",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(keep_best));
    f(Spec{.flag = "--checkpoint-every",
           .key = "checkpoint_every",
           .group = "run",
           .help = "also checkpoint every N steps",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(checkpoint_every));
    f(Spec{.flag = "--resume",
           .key = "resume",
           .help = "resume from this checkpoint; 'auto': from --checkpoint FILE or FILE.prev if valid, else "
                   "start fresh",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(resume));
    f(Spec{.flag = "--metrics",
           .key = "metrics",
           .help = "write JSON lines to this file: a header, one record per epoch and one at the end "
                   "(docs/metrics.md); a resumed run appends",
           .store = run_only,
           .agree = false},
      OMPML_FIELD(metrics));
    // Every rank joins the loss sum of a step record: the interval must match.
    f(Spec{.flag = "--metrics-every",
           .key = "metrics_every",
           .help = "with --metrics: also a step record (the step's loss over all ranks, lr, samples/s) every N "
                   "steps (0: none)",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(metrics_every));
    f(Spec{.flag = "--log-every",
           .key = "log_every",
           .help = "print a progress line every N steps (0: every 30 s where stdout is not a terminal, as under "
                   "mpirun or sbatch; a live line on a terminal)",
           .range = kNonNegative,
           .store = run_only,
           .agree = false},
      OMPML_FIELD(log_every));
    f(Spec{.flag = "--step-epochs",
           .key = "step_epochs",
           .help = "step schedule: decay every N epochs",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(step_epochs));
    f(Spec{.flag = "--streaming",
           .key = "streaming",
           .group = "data",
           .help = "read batches from the file instead of holding the split in memory",
           .store = run_only},
      OMPML_FIELD(streaming));
    f(Spec{.flag = "--streaming-reads",
           .key = "streaming_reads",
           .group = "data",
           .help = "with --streaming on several ranks: collective (MPI-IO, all ranks in one read), independent, "
                   "or auto (collective unless the images are compressed; data/README.md)",
           .store = run_only},
      OMPML_FIELD(streaming_reads));
    f(Spec{.flag = "--mpi-staging",
           .key = "mpi_staging",
           .group = "gradients",
           .help = "copy gradients through host memory for MPI even where MPI could read device memory",
           .store = run_only},
      OMPML_FIELD(mpi_staging));
    // The bucket layout decides the sequence of reductions: it must match everywhere.
    f(Spec{.flag = "--bucket-mb",
           .key = "bucket_mb",
           .group = "gradients",
           .help = "gradient allreduce bucket size in MB (started during backward); 0: one bucket per step",
           .range = kNonNegative,
           .store = run_only},
      OMPML_FIELD(bucket_mb));
    f(Spec{.flag = "--grad-transport",
           .key = "grad_transport",
           .group = "gradients",
           .help = "how ranks sum gradients: shm (shared memory, all ranks on one node, host memory), hier "
                   "(shared memory in each node, MPI between one leader per node; host memory), mpi (MPI "
                   "buckets) or auto (shm on one node, hier on several with several ranks on a node, else mpi)",
           .store = run_only},
      OMPML_FIELD(grad_transport));
    // Changes what every rank sends and how it sums (bf16 alltoall + allgather): must match.
    // Changes which collectives every rank calls: must match.
    f(Spec{.flag = "--mpi-fp32-sum",
           .key = "mpi_fp32_sum",
           .group = "gradients",
           .help = "how MPI sums fp32 gradients: exchange (alltoall, the owner's sum in a fixed order, allgather), "
                   "allreduce (MPI_Iallreduce buckets, MPI's order) or auto (allreduce; the exchange with "
                   "--reproducible-ranks and between the node leaders of hier; lib/parallel/grad_sum.hpp)",
           .store = run_only},
      OMPML_FIELD(mpi_fp32_sum));
    f(Spec{.flag = "--grad-dtype",
           .key = "grad_dtype",
           .group = "gradients",
           .help = "what the ranks exchange when they sum gradients: fp32, or bf16 (half the bytes; summed in fp32, "
                   "rounded to bf16 once; lib/parallel/grad_sum.hpp)",
           .store = run_only},
      OMPML_FIELD(grad_dtype));
    // Every rank records and joins the file's collective writes: the path must be the same.
    f(Spec{.flag = "--trace",
           .key = "trace",
           .help = "write a timeline of every rank (Chrome trace-event JSON: Perfetto, chrome://tracing, "
                   "tools/trace_report.py) to this file, at each checkpoint and at the end",
           .store = run_only},
      OMPML_FIELD(trace));
    f(Spec{.flag = "--trace-steps",
           .key = "trace_steps",
           .help = "with --trace: record steps A to B only (A:B, 1-based), so a long run writes a small file",
           .store = run_only},
      OMPML_FIELD(trace_steps));
}

} // namespace ompml
