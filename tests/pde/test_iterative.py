# SPDX-License-Identifier: MIT
"""The iterative preset (CG + GAMG): consistent gradients, agreement with MUMPS, failures."""

import numpy as np
import pytest
from pde_cases import build, misfit_taylor_test, smooth_field, solve_each

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]

N = 16  # mesh squares per side: enough for a few CG iterations and a two-level hierarchy


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_taylor_remainder_rate_two_at_default_tolerance(comm, kind):
    result = misfit_taylor_test(build(kind, comm, n=N, solver="iterative"))
    np.testing.assert_allclose(result["rates"], 2.0, atol=0.1)


def test_iterative_agrees_with_direct(comm, kind):
    field, cot = smooth_field((9, 9), 0.5), np.linspace(-1.0, 1.0, 9)
    make = lambda solver: build(kind, comm, n=N, solver=solver)  # noqa: E731
    (y_direct, g_direct), (y_iter, g_iter) = solve_each(make, ("direct", "iterative"), field, cot)
    assert _relative(y_iter, y_direct) < 1e-8
    assert _relative(g_iter, g_direct) < 1e-8


def test_solve_does_not_depend_on_earlier_fields(comm):
    """The multigrid hierarchy is rebuilt per field, so a solve is a function of its field."""
    field = smooth_field((9, 9), 0.5)
    visited = build("conductivity", comm, n=N, solver="iterative")
    visited.forward(3.0 * field)
    fresh = build("conductivity", comm, n=N, solver="iterative")
    assert np.array_equal(visited.forward(field), fresh.forward(field))


def test_non_convergence_raises_pde_solve_error(comm, kind):
    from invprior.pde import PDESolveError

    problem = build(
        kind, comm, n=N, solver="iterative", petsc_options={"ksp_max_it": 1},
        petsc_options_prefix=f"iterative_fail_{kind}_",
    )  # fmt: skip
    with pytest.raises(PDESolveError, match="forward solve failed: .*DIVERGED_MAX_IT"):
        problem.forward(smooth_field((9, 9)))


def test_unknown_solver_is_rejected(comm, kind):
    with pytest.raises(ValueError, match=r"solver must be one of \['direct', 'iterative'\]"):
        build(kind, comm, solver="gmres")
