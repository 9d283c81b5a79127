# SPDX-License-Identifier: MIT
"""Source problem: its affine map F m + c reproduces the solve path."""

import numpy as np
import pytest
from pde_cases import UNIT, smooth_field

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]


def _problem(comm):
    from invprior.pde import SourceProblem, grid_sensors, unit_square

    # Non-zero Dirichlet data, so the map is affine: y = F m + c.
    return SourceProblem(
        unit_square(comm, 8), grid_sensors(UNIT, 3), (9, 9),
        kappa=lambda x: 1.0 + x[0], dirichlet=[(None, lambda x: x[1])],
    )  # fmt: skip


def test_affine_map_equals_solve_path(comm):
    problem = _problem(comm)
    F, c = problem.affine_map()
    # n_obs adjoint solves and one forward solve for the offset
    assert (problem.counter.forward, problem.counter.adjoint) == (1, 9)
    assert F.shape == (9, 81) and c.shape == (9,)
    field, cot = smooth_field((9, 9)), np.linspace(-1, 2, 9)
    y_solve, y_dense = problem.forward(field), F @ field.ravel() + c
    assert np.linalg.norm(y_dense - y_solve) <= 1e-10 * np.linalg.norm(y_solve)
    g_solve, g_dense = problem.vjp(field, cot), (F.T @ cot).reshape(9, 9)
    assert np.linalg.norm(g_dense - g_solve) <= 1e-10 * np.linalg.norm(g_solve)
    assert np.linalg.norm(c) > 0.1 * np.linalg.norm(y_solve)  # the boundary data's share


def test_source_gradient_needs_no_reassembly(comm):
    """The adjoint reuses the factorisation: one back-substitution per gradient."""
    problem = _problem(comm)
    before = problem.A.getInfo()["assemblies"]
    problem.vjp(smooth_field((9, 9)), np.ones(9))
    assert problem.A.getInfo()["assemblies"] == before
    assert (problem.counter.forward, problem.counter.adjoint) == (0, 1)
