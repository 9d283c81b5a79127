# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # A contaminant carried by the wind: a forward model from a variational form
#
# A contaminant released at the rate $m(x)$ diffuses and is carried by a constant wind
# $w$ across the unit square, and is removed at the boundary:
#
# $$
# -\nabla\cdot(\kappa \nabla u) + w\cdot\nabla u = m \quad \text{in } \Omega = (0, 1)^2,
# \qquad u = 0 \quad \text{on } \partial\Omega.
# $$
#
# No built-in model covers this physics. :class:`invprior.pde.VariationalProblem` takes
# its weak form as written, $F(u, m; v) = \int_\Omega \kappa \nabla u\cdot\nabla v +
# (w\cdot\nabla u) v - m v \, dx$, and derives the rest: the operator is not symmetric
# (the wind term), so it is factorised by LU, and the adjoint
# $(\partial F/\partial u)^T \lambda = B^T \bar y$, which carries information *upwind*,
# gets its own factorisation. The map from release rate to sensor readings is affine, so
# the problem is also an affine forward model (a dense map is available).
#
# Run with `python examples/advection_diffusion.py --out results/advection_diffusion` (or
# under `mpiexec -n 2`; only rank 0 writes and prints).

# +
import argparse
import json
from pathlib import Path

from mpi4py import MPI

import numpy as np
import ufl

from invprior.fileio import write_json
from invprior.pde import VariationalProblem, grid_sensors, taylor_test, unit_square

UNIT = ((0.0, 0.0), (1.0, 1.0))
# -

# ## The weak form
#
# The state `u`, the parameter `m` (the grid field, moved to P1) and the test function
# `v` are handed to the form by the problem.


def contaminant_form(kappa, wind):
    """The residual ``F(u, m; v)`` of steady advection-diffusion with source ``m``."""

    def residual(u, m, v):
        w = ufl.as_vector(wind)
        return (
            kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.dot(w, ufl.grad(u)) * v - m * v
        ) * ufl.dx

    return residual


# ## Release, readings, gradient
#
# A Gaussian release in the middle of the square; with the wind blowing in $+x$, the
# sensors downwind read more than those upwind. The gradient of a data misfit costs one
# adjoint solve, and the Taylor test checks it (remainder rate 2).


def run(n=48, grid=33, sensors=4, wind=(6.0, 0.0), kappa=0.1, out=None):
    """Solve the contaminant problem, check its gradient, return a summary.

    Collective on ``MPI.COMM_WORLD``; with ``out``, rank 0 writes the summary to
    ``advection_diffusion.json`` there.
    """
    comm = MPI.COMM_WORLD
    points = grid_sensors(UNIT, sensors)
    problem = VariationalProblem(
        unit_square(comm, n), contaminant_form(kappa, wind), points, (grid, grid)
    )
    s = np.linspace(0.0, 1.0, grid)
    gx, gy = np.meshgrid(s, s)
    release = 20.0 * np.exp(-((gx - 0.5) ** 2 + (gy - 0.5) ** 2) / (2 * 0.1**2))
    obs = problem.forward(release)
    rng = np.random.default_rng(0)
    data = obs + 0.05 * np.abs(obs).max() * rng.standard_normal(obs.shape)

    def misfit(field):
        r = problem.forward(field) - data
        return 0.5 * float(r @ r)

    def gradient(field):
        return problem.vjp(field, problem.forward(field) - data)

    taylor = taylor_test(misfit, gradient, release, rng.standard_normal(release.shape))
    downwind = points[:, 0] > 0.5
    summary = {
        "linear": problem.linear,
        "symmetric": problem.symmetric,
        "affine": problem.affine,
        "n_obs": problem.n_obs,
        "obs_max": float(obs.max()),
        "obs_downwind_over_upwind": float(obs[downwind].mean() / obs[~downwind].mean()),
        "taylor_rate": taylor["rate"],
        "solves": {"forward": problem.counter.forward, "adjoint": problem.counter.adjoint},
    }
    if out is not None and comm.rank == 0:
        write_json(Path(out) / "advection_diffusion.json", summary)
    return summary


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="Advection-diffusion from a variational form")
    parser.add_argument("--n", type=int, default=48, help="mesh squares per side")
    parser.add_argument("--grid", type=int, default=33, help="grid nodes per side")
    parser.add_argument("--sensors", type=int, default=4, help="sensors per side")
    parser.add_argument("--wind", type=float, nargs=2, default=(6.0, 0.0), help="wind (x, y)")
    parser.add_argument("--kappa", type=float, default=0.1, help="diffusivity")
    parser.add_argument("--out", default="results/advection_diffusion", help="output folder")
    args = parser.parse_args()
    summary = run(args.n, args.grid, args.sensors, tuple(args.wind), args.kappa, out=args.out)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
