// ompml-train: trains an MLP on an HDF5 dataset (data/README.md schema) and reports progress.
// The steps are library functions (lib/app/train_setup.hpp, train_console.hpp) and the loop is
// ompml::Trainer (lib/nn/trainer.hpp); this file calls them in order.
//
//   ompml-train --data data/fashion-mnist.h5 --layers 784,512,256,10 --activation relu \
//               --epochs 10 --batch 128 --optimizer adam --lr 1e-3 --seed 1 --backend omp
//   mpirun -np 4 ompml-train ...          (data parallel: --batch is the global batch)
//
// Resume (--resume FILE | auto): the hyperparameters come from the checkpoint (a flag given
// that disagrees is an error); --epochs may extend the run; --data defaults to the checkpoint's
// dataset. Any rank count may resume any checkpoint. `auto` tries --checkpoint FILE, then
// FILE.prev (jobs/README.md). Every flag: lib/nn/settings.hpp and lib/app/train_options.hpp.
//
// Data parallelism (MPI; without mpirun it runs as a 1-rank singleton): every rank binds its
// device, builds the same configuration (agreed on collectively), opens the dataset
// (collectively: one rank's failure stops all with its message), starts from rank 0's
// parameters and trains on its slice of each global batch; the step's transport
// (parallel/data_parallel.hpp) sums the gradients in buckets overlapped with backward. Only rank
// 0 prints, writes metrics and checkpoints.
//
// Errors: a failure every rank sees (CollectiveError) ends every rank through the normal path;
// a failure on one rank only ends the job through abort_all (MPI_Abort), never a hang.
// Preemption: SIGUSR1 or SIGTERM -> checkpoint -> exit 85 on every rank (app/stop_signal.hpp).
#include "app/run_policy.hpp"
#include "app/stop_signal.hpp"
#include "app/train_console.hpp"
#include "app/train_setup.hpp"
#include "parallel/mpi_comm.hpp"

using namespace ompml;

namespace {

int train(const MpiSession& mpi, int argc, char** argv)
{
    TrainFlags flags;
    if (const auto rc = parse_train_flags(argc, argv, mpi.root(), flags)) return *rc;
    check_checkpoint_flag(mpi, flags.opt); // before anything is read or trained
    TrainRun run;
    // Before the backend allocates: local rank -> device, the same rule for every backend.
    collective_try(mpi, [&] { run.binding = mpi.bind_device(flags.opt.backend); });

    run.resume = choose_resume(mpi, flags.opt);  // load: where to start
    run.cfg = resolve_config(flags, run.resume); // the run's hyperparameters
    run.opt = flags.opt;                         // (--data defaults to the checkpoint's)
    collective_try(mpi, [&] { run.be = make_backend(run.opt.backend); });
    run.data = open_data(mpi, *run.be, run.opt, run.cfg, run.resume); // the dataset
    fix_schedule(run.cfg, run.opt, run.data, run.resume);
    agree_on_run(mpi, run.cfg, run.opt, run.data, run.resume);
    run.step = build_step(mpi, *run.be, run.cfg, run.opt, run.data, run.resume); // build, or resume
    run.trace = open_trace(mpi, run.opt, *run.be, run.step.step->model().num_params());

    TrainConsole console(mpi, run);
    console.print_start();
    MpiReduceComm comm(mpi.comm(), run.cfg.reproducible_ranks > 0); // sums in the fixed tree in that mode
    RunPolicy policy(mpi, run, console, comm);
    Trainer trainer(run.cfg, *run.step.step, comm); // the loop
    const RunLimits limits{run.opt.max_steps, run.opt.checkpoint_every};
    const TrainResult res =
        trainer.run(*run.data.train, run.data.test.get(), run.resume.start(), limits, policy.hooks());
    policy.finish(res); // report
    return res.interrupted ? kExitCheckpointed : 0;
}

} // namespace

int main(int argc, char** argv)
{
    // The session lives outside the body: an error on one rank must reach abort_all before
    // MPI_Finalize, which would wait for ranks that are blocked in a collective.
    MpiSession mpi(&argc, &argv);
    install_stop_handlers();
    return run_on_every_rank(mpi, "ompml-train", [&] { return train(mpi, argc, argv); });
}
