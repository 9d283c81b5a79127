# SPDX-License-Identifier: MIT
"""Tiny problems and smooth fields shared by the forward-model tests."""

import numpy as np

UNIT = ((0.0, 0.0), (1.0, 1.0))


def smooth_field(shape, scale=1.0):
    """A deterministic smooth field on the unit-square grid, shape ``shape``."""
    ys, xs = np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1])
    gx, gy = np.meshgrid(xs, ys)
    return scale * (np.sin(2 * gx + 1) * np.cos(3 * gy) + 0.5 * gx * gy)


def build(kind, comm, n=8, grid=(9, 9), k=3, **kwargs):
    """A tiny source or conductivity problem on the unit square with k x k sensors."""
    from invprior.pde import ConductivityProblem, SourceProblem, grid_sensors, unit_square

    cls = {"source": SourceProblem, "conductivity": ConductivityProblem}[kind]
    return cls(unit_square(comm, n), grid_sensors(UNIT, k), grid, **kwargs)


def misfit(problem, y):
    """The data misfit ``0.5 |F(m) - y|^2`` of ``problem`` and its gradient by the adjoint."""

    def f(m):
        r = problem.forward(m) - y
        return 0.5 * float(r @ r)

    def grad(m):
        return problem.vjp(m, problem.forward(m) - y)

    return f, grad


def misfit_taylor_test(problem, shape=(9, 9), seed=4):
    """Taylor test of :func:`misfit` at a smooth field with noisy data of that field."""
    from invprior.pde import taylor_test

    rng = np.random.default_rng(seed)
    m = smooth_field(shape, 0.5)
    y = problem.forward(m) + 0.1 * rng.standard_normal(problem.n_obs)
    f, grad = misfit(problem, y)
    return taylor_test(f, grad, m, rng.standard_normal(shape))


def solve_each(make, args, field, cot):
    """``[(F(field), J^T cot)]`` of the problem ``make(arg)`` for each arg, destroyed after."""
    results = []
    for arg in args:
        problem = make(arg)
        results.append((problem.forward(field), problem.vjp(field, cot)))
        problem.destroy()
    return results
