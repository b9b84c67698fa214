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
// parameters and trains on its slice of each global batch; MpiComm sums the gradients in
// buckets overlapped with backward. Only rank 0 prints, writes metrics and checkpoints.
//
// Errors: a failure every rank sees (CollectiveError) ends every rank through the normal path;
// a failure on one rank only ends the job through abort_all (MPI_Abort), never a hang.
// Preemption: SIGUSR1 or SIGTERM -> checkpoint -> exit 85 on every rank (app/stop_signal.hpp).
#include "app/stop_signal.hpp"
#include "app/train_console.hpp"
#include "app/train_setup.hpp"

using namespace ompml;

namespace {

int train(const MpiSession& mpi, int argc, char** argv)
{
    TrainFlags flags;
    if (const auto rc = parse_train_flags(argc, argv, mpi.root(), flags)) return *rc;
    const TrainOptions& opt = flags.opt;
    check_checkpoint_flag(mpi, opt); // before anything is read or trained
    // Before the backend allocates: local rank -> device, the same rule for every backend.
    DeviceBinding binding;
    collective_try(mpi, [&] { binding = mpi.bind_device(opt.backend); });

    ResumePoint resume = choose_resume(mpi, opt);    // load: where to start
    TrainConfig cfg = resolve_config(flags, resume); // the run's hyperparameters
    std::unique_ptr<Backend> be;
    collective_try(mpi, [&] { be = make_backend(opt.backend); });
    const TrainData data = open_data(mpi, *be, opt, cfg, resume); // the dataset
    fix_schedule(cfg, opt, data, resume);
    agree_on_run(mpi, cfg, opt, data, resume);
    TrainModel model = build_model(mpi, *be, cfg, data, resume); // build, or resume
    const std::unique_ptr<MpiComm> comm = make_comm(mpi, *be, opt, model);
    const std::unique_ptr<TraceFile> trace = open_trace(mpi, opt, *be, model.mlp->num_params());

    TrainConsole console(mpi, cfg, opt, data, resume, model, *comm, trace.get());
    console.print_start(*be, binding);
    Trainer trainer(*be, cfg, *model.mlp, *model.opt, *comm); // the loop
    const RunLimits limits{opt.max_steps, opt.checkpoint_every};
    const TrainResult res = trainer.run(*data.train, data.test.get(), resume.start(), limits, console.hooks());
    console.print_end(res); // report
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
