# SPDX-License-Identifier: MIT
"""The same field gives the same observations and gradients on one rank and on all ranks.

Under ``mpiexec -n 2`` each rank also builds the problem on ``COMM_SELF``, so one run
compares the serial and the distributed results; serially both are the same.
"""

import numpy as np
import pytest
from pde_cases import build, smooth_field, solve_each

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_serial_and_parallel_agree(comm, kind):
    from mpi4py import MPI

    field = smooth_field((9, 9), 0.5)
    cot = np.linspace(-1.0, 1.0, 16)
    make = lambda c: build(kind, c, n=12, k=4)  # noqa: E731
    (y1, g1), (yn, gn) = solve_each(make, (MPI.COMM_SELF, comm), field, cot)
    assert _relative(yn, y1) < 1e-8
    assert _relative(gn, g1) < 1e-8
    # Replicated: every rank holds the same numbers.
    assert np.array_equal(comm.bcast(yn, root=0), yn)
    assert np.array_equal(comm.bcast(gn, root=0), gn)


def test_dense_map_agrees_across_ranks(comm):
    from mpi4py import MPI

    maps = [build("source", c, k=2).affine_map()[0] for c in (MPI.COMM_SELF, comm)]
    assert _relative(maps[1], maps[0]) < 1e-8
