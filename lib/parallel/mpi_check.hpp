// MPI_CHECK: the one check macro for MPI calls. The library sets MPI_ERRORS_RETURN on
// MPI_COMM_WORLD (MpiSession), so a failing call returns its code here instead of MPI's own
// abort; mpi_fail() then prints "expr: <MPI_Error_string>" with the rank prefix (and our source
// location only under OMPML_ERROR_SOURCE=1, core/check.hpp) and
// ends every rank through MPI_Abort. It does not throw: after an MPI error the communicator's
// state is undefined and the other ranks may already wait in a collective, so unwinding on one
// rank would turn an error into a hang.
#pragma once

#include <mpi.h>

namespace ompml {

[[noreturn]] void mpi_fail(const char* file, int line, const char* expr, int code);

} // namespace ompml

#define MPI_CHECK(call)                                                                                                \
    do {                                                                                                               \
        const int ompml_mpi_rc_ = (call);                                                                              \
        if (ompml_mpi_rc_ != MPI_SUCCESS) ::ompml::mpi_fail(__FILE__, __LINE__, #call, ompml_mpi_rc_);                 \
    } while (0)
