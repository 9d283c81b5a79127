#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The source-identification study on a 512x512 P1 mesh (263,169 dofs) on N MPI ranks:
# examples/source_identification_large.toml, one rank group per chain.
#
#   examples/run_large.sh                    # 2 ranks: one chain per rank
#   examples/run_large.sh 8                  # 8 ranks: 2 groups of 4 ranks, one chain each
#   examples/run_large.sh 8 --no-parallel-chains   # the chains in turn on all 8 ranks
#   INVPRIOR=invprior MPIEXEC=mpiexec examples/run_large.sh 16   # a conda environment
#
# Every rank runs the same program with the same seed; only world rank 0 prints and writes
# results/source_identification_large. The number of ranks must be a multiple of the
# number of chains ([mcmc] num_chains, or --chains C).
set -euo pipefail
cd "$(dirname "$0")/.."

nprocs="${1:-2}"
shift $(($# > 0 ? 1 : 0))
# The launcher must belong to the MPI library mpi4py was built against (with the PyPI
# wheel, the mpich in the venv); another MPI's mpirun would start N serial runs.
invprior="${INVPRIOR:-.venv/bin/invprior}"
mpiexec="${MPIEXEC:-.venv/bin/mpiexec}"
# One thread per rank: the ranks already occupy the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

exec "$mpiexec" -n "$nprocs" "$invprior" run examples/source_identification_large.toml "$@"
