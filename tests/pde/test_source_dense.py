# SPDX-License-Identifier: MIT
"""Source problem: the dense observation map reproduces the solve path."""

import numpy as np
import pytest
from pde_cases import UNIT, smooth_field

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]


def _problem(comm, dense):
    from invprior.pde import SourceProblem, grid_sensors, unit_square

    # Non-zero Dirichlet data, so the map is affine: y = F m + c.
    return SourceProblem(
        unit_square(comm, 8), grid_sensors(UNIT, 3), (9, 9),
        kappa=lambda x: 1.0 + x[0], dirichlet=[(None, lambda x: x[1])], dense=dense,
    )  # fmt: skip


def test_dense_map_equals_solve_path(comm):
    solve, dense = _problem(comm, False), _problem(comm, True)
    field, cot = smooth_field((9, 9)), np.linspace(-1, 2, 9)
    y_solve, y_dense = solve.forward(field), dense.forward(field)
    assert np.linalg.norm(y_dense - y_solve) <= 1e-10 * np.linalg.norm(y_solve)
    g_solve, g_dense = solve.vjp(field, cot), dense.vjp(field, cot)
    assert np.linalg.norm(g_dense - g_solve) <= 1e-10 * np.linalg.norm(g_solve)
    assert dense.observation_matrix().shape == (9, 81)
    # Built once from n_obs adjoint solves and one forward solve for the offset.
    dense.forward(2 * field)
    assert (dense.counter.forward, dense.counter.adjoint) == (1, 9)


def test_source_gradient_needs_no_reassembly(comm):
    """The adjoint reuses the factorisation: one back-substitution per gradient."""
    problem = _problem(comm, False)
    before = problem.A.getInfo()["assemblies"]
    problem.vjp(smooth_field((9, 9)), np.ones(9))
    assert problem.A.getInfo()["assemblies"] == before
    assert (problem.counter.forward, problem.counter.adjoint) == (0, 1)
