#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The forward demo (examples/forward_demo.py) on a 512x512 P1 mesh of the unit square,
# 263,169 dofs, distributed over N MPI ranks.
#
#   examples/mpi_forward.sh                  # 2 ranks
#   examples/mpi_forward.sh 4                # 4 ranks
#   examples/mpi_forward.sh 2 --n 64         # extra arguments go to forward_demo.py
#   PYTHON=python MPIEXEC=mpiexec examples/mpi_forward.sh 8   # a conda environment
#
# Every rank runs the same script: DOLFINx partitions the mesh, PETSc and MUMPS split the
# assembly, the factorisation and the solves, the sensor values are reduced so that every
# rank holds all of them, and only rank 0 writes results/forward_large/forward_demo.png
# and prints the summary (one JSON line).
set -euo pipefail
cd "$(dirname "$0")/.."

nprocs="${1:-2}"
shift $(($# > 0 ? 1 : 0))
# The launcher must belong to the MPI library that mpi4py was built against: with the PyPI
# wheel that is the mpich installed in the venv. Another MPI's mpirun would start N
# independent serial runs instead of one run on N ranks.
python="${PYTHON:-.venv/bin/python}"
mpiexec="${MPIEXEC:-.venv/bin/mpiexec}"
# One thread per rank: the ranks already occupy the cores, so a threaded BLAS inside MUMPS
# would only oversubscribe them.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

exec "$mpiexec" -n "$nprocs" "$python" examples/forward_demo.py \
    --n 512 --out results/forward_large "$@"
