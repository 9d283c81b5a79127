# SPDX-License-Identifier: MIT
"""Conductivity problem: the cached forward state is reused only for the same field."""

import numpy as np
import pytest
from pde_cases import build, smooth_field

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]


def test_vjp_reuses_state_of_same_field(comm):
    problem = build("conductivity", comm)
    field = smooth_field((9, 9), 0.5)
    problem.forward(field)
    problem.forward(field.copy())
    problem.vjp(field, np.ones(9))
    assert (problem.counter.forward, problem.counter.adjoint) == (1, 1)


def test_vjp_at_new_field_is_correct(comm):
    problem, fresh = build("conductivity", comm), build("conductivity", comm)
    a, b = smooth_field((9, 9), 0.5), smooth_field((9, 9), -0.3)
    cot = np.linspace(-1, 1, 9)
    problem.forward(a)
    g = problem.vjp(b, cot)
    assert problem.counter.forward == 2
    np.testing.assert_allclose(g, fresh.vjp(b, cot), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(problem.forward(b), fresh.forward(b), rtol=1e-12)


def test_solve_forward_then_forward_gives_its_observations(comm):
    problem = build("conductivity", comm)
    a, b = smooth_field((9, 9), 0.5), smooth_field((9, 9), -0.3)
    y_a = problem.forward(a)
    problem.solve_forward(b)
    np.testing.assert_allclose(problem.forward(b), build("conductivity", comm).forward(b))
    np.testing.assert_allclose(problem.forward(a), y_a, rtol=1e-12)
