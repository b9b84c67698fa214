// Preemption (jobs/README.md): SIGUSR1 or SIGTERM asks ompml-train to stop. The handler only
// sets a flag; at every step boundary the ranks reduce it (Hooks::should_stop), write the
// checkpoint and exit kExitCheckpointed on every rank, so a signal is acted on within one step.
#pragma once

namespace ompml {

// "Stopped on SIGUSR1 (or SIGTERM) after writing the checkpoint: please requeue". The batch
// scripts read it (jobs/lib/common.sh OMPML_EXIT_CHECKPOINTED, jobs/README.md).
constexpr int kExitCheckpointed = 85;

// Installs the handlers: right after MPI_Init (which may install handlers of its own) and
// before any step. SA_RESTART: a read or wait interrupted by the signal carries on.
void install_stop_handlers();

// The signal that asked this process to stop; 0: none.
int stop_signal();

// "SIGUSR1", "SIGTERM", or what stopped a rank that got none itself.
const char* stop_signal_name(int sig);

} // namespace ompml
