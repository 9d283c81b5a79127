# SPDX-License-Identifier: MIT
"""Manufactured solutions: P1 L2 error of order 2 for both forward models.

The grid is aligned with the mesh vertices, so the bilinear transfer is exact nodal
interpolation and the error is the finite-element one.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.dolfinx, pytest.mark.mpi]

SIZES = (8, 16, 32)


def _u_exact(x):
    import ufl

    return ufl.sin(ufl.pi * x[0]) * ufl.sin(ufl.pi * x[1]) + x[0] + 0.5 * x[1]


def _grid(n, fn):
    s = np.linspace(0.0, 1.0, n + 1)
    gx, gy = np.meshgrid(s, s)
    return fn(gx, gy)


def _rates(errors):
    from invprior.pde import convergence_rates

    return convergence_rates([1.0 / n for n in SIZES], errors)


def test_source_problem_p1_rate_two(comm):
    """kappa = 2, Dirichlet data on the left and bottom, Neumann flux on the right and top."""
    import ufl

    from invprior.pde import SourceProblem, l2_error, tag_boundaries, unit_square

    kappa = 2.0
    f = lambda x, y: kappa * 2 * np.pi**2 * np.sin(np.pi * x) * np.sin(np.pi * y)  # noqa: E731
    g = lambda x: np.sin(np.pi * x[0]) * np.sin(np.pi * x[1]) + x[0] + 0.5 * x[1]  # noqa: E731
    errors = []
    for n in SIZES:
        mesh = unit_square(comm, n)
        tags = tag_boundaries(
            mesh,
            {
                1: lambda x: np.isclose(x[0], 0.0) | np.isclose(x[1], 0.0),
                2: lambda x: np.isclose(x[0], 1.0) | np.isclose(x[1], 1.0),
            },
        )
        flux = kappa * ufl.dot(
            ufl.grad(_u_exact(ufl.SpatialCoordinate(mesh))), ufl.FacetNormal(mesh)
        )
        problem = SourceProblem(
            mesh, [[0.5, 0.5]], (n + 1, n + 1), kappa=kappa,
            dirichlet=[(1, g)], neumann=[(2, flux)], facet_tags=tags,
        )  # fmt: skip
        errors.append(l2_error(problem.solve_forward(_grid(n, f)), _u_exact))
    np.testing.assert_allclose(_rates(errors), 2.0, atol=0.15)


def test_conductivity_problem_p1_rate_two(comm):
    """m = x - y / 2, u = sin(pi x) sin(pi y) + x + y / 2 on the whole boundary."""
    import ufl

    from invprior.pde import ConductivityProblem, l2_error, unit_square

    m = lambda x, y: x - 0.5 * y  # noqa: E731
    g = lambda x: np.sin(np.pi * x[0]) * np.sin(np.pi * x[1]) + x[0] + 0.5 * x[1]  # noqa: E731
    errors = []
    for n in SIZES:
        mesh = unit_square(comm, n)
        x = ufl.SpatialCoordinate(mesh)
        source = -ufl.div(ufl.exp(x[0] - 0.5 * x[1]) * ufl.grad(_u_exact(x)))
        problem = ConductivityProblem(
            mesh, [[0.5, 0.5]], (n + 1, n + 1), source=source, dirichlet=[(None, g)]
        )
        errors.append(l2_error(problem.solve_forward(_grid(n, m)), _u_exact))
    np.testing.assert_allclose(_rates(errors), 2.0, atol=0.15)
