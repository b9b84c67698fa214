#!/bin/bash
# launch.sh NODES PROG ARGS...: inside a Slurm allocation, start PROG on NODES of its nodes
# with the job's ranks per node, the way the batch scripts do (srun --mpi=pmix, or mpirun per
# OMPML_LAUNCH). For drivers that run several steps in one allocation (the scaling study).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || exit 1
nodes=${1:?usage: launch.sh NODES PROG ARGS...}
shift
per_node=${SLURM_NTASKS_PER_NODE:-$(( ${SLURM_NTASKS:-1} / ${SLURM_NNODES:-1} ))}
per_node=${per_node%%"("*}   # Slurm may write "4(x2)"
: "${OMPML_LAUNCH:=srun}"
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
OMPML_STEP_NODES=$nodes OMPML_STEP_NTASKS=$((nodes * per_node)) ompml_launch "$@"
