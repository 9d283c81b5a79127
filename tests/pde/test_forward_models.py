# SPDX-License-Identifier: MIT
"""Contract and derivative tests run for both forward models."""

import numpy as np
import pytest
from pde_cases import build, misfit, misfit_taylor_test, smooth_field

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]


def test_shapes_and_counter(comm, kind):
    problem = build(kind, comm)
    field = smooth_field((9, 9), 0.5)
    y = problem.forward(field)
    g = problem.vjp(field, np.ones(9))
    assert y.shape == (9,) and g.shape == (9, 9)
    assert (problem.counter.forward, problem.counter.adjoint) == (1, 1)


def test_taylor_remainder_rate_two(comm, kind):
    result = misfit_taylor_test(build(kind, comm))
    assert result["rates"].shape == (5,)
    np.testing.assert_allclose(result["rates"], 2.0, atol=0.1)


def test_adjoint_consistency(comm, kind):
    """<J dm, dy> = <dm, J^T dy>, J by central differences (exact for the linear problem)."""
    problem = build(kind, comm)
    rng = np.random.default_rng(5)
    m, dm, dy = smooth_field((9, 9), 0.5), rng.standard_normal((9, 9)), rng.standard_normal(9)
    h = 1e-5
    jdm = (problem.forward(m + h * dm) - problem.forward(m - h * dm)) / (2 * h)
    assert float(jdm @ dy) == pytest.approx(float(np.sum(dm * problem.vjp(m, dy))), rel=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_field_raises_before_solving(comm, kind, bad):
    problem = build(kind, comm)
    field = np.zeros((9, 9))
    field[3, 4] = bad
    with pytest.raises(ValueError, match="1 NaN/inf"):
        problem.forward(field)
    assert problem.counter.total == 0


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.zeros((9, 8)), np.zeros(9)), ValueError, r"shape \(9, 8\) but the grid is \(9, 9\)"),
        ((np.zeros((9, 9)), np.zeros(8)), ValueError, r"pass shape \(9,\)"),
        ((np.full((9, 9), "a"), np.zeros(9)), TypeError, "real numbers"),
    ],
)
def test_bad_inputs_are_rejected(comm, kind, args, error, match):
    with pytest.raises(error, match=match):
        build(kind, comm).vjp(*args)


def test_solver_failure_raises_pde_solve_error(comm, kind):
    from invprior.pde import PDESolveError

    options = {"ksp_type": "cg", "pc_type": "none", "ksp_max_it": 2, "ksp_rtol": 1e-14}
    problem = build(kind, comm, petsc_options=options, petsc_options_prefix=f"fail_{kind}_")
    with pytest.raises(PDESolveError, match="forward solve failed: KSP converged reason "
                       "DIVERGED_MAX_IT"):  # fmt: skip
        problem.forward(smooth_field((9, 9)))


def test_p2_state_space(comm, kind):
    """P2 state with P1 parameter space: the gradient still passes the Taylor test."""
    import dolfinx.fem

    from invprior.pde import (
        ConductivityProblem,
        SourceProblem,
        grid_sensors,
        taylor_test,
        unit_square,
    )

    V = dolfinx.fem.functionspace(unit_square(comm, 6), ("Lagrange", 2))
    cls = {"source": SourceProblem, "conductivity": ConductivityProblem}[kind]
    problem = cls(V, grid_sensors(((0, 0), (1, 1)), 2), (5, 5))
    rng = np.random.default_rng(6)
    f, grad = misfit(problem, rng.standard_normal(4))
    result = taylor_test(f, grad, smooth_field((5, 5), 0.3), rng.standard_normal((5, 5)))
    np.testing.assert_allclose(result["rates"], 2.0, atol=0.1)
