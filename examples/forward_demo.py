# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Forward model demo: a Gaussian source seen by 64 point sensors
#
# We solve the source problem of :class:`invprior.pde.SourceProblem` on the unit square,
#
# $$
# -\nabla\cdot(\kappa \nabla u) = f \quad \text{in } \Omega = (0, 1)^2, \qquad
# u = 0 \quad \text{on } \partial\Omega,
# $$
#
# with the source $f$ given on a regular $64 \times 64$ grid (as a generative prior would
# produce it) and moved onto the P1 space by bilinear interpolation. The sensors observe
# $y_k = u_h(p_k)$ on an $8 \times 8$ interior grid. The gradient of
# $\tfrac12 \|y\|^2$ with respect to the grid field costs one adjoint back-substitution.
#
# Run with `python examples/forward_demo.py --out results/forward_demo` (or under
# `mpiexec -n 2`; only rank 0 writes and prints).

# +
import argparse
import json
import pathlib

from mpi4py import MPI

import numpy as np
from matplotlib.figure import Figure

from invprior.fileio import save_figure
from invprior.pde import SourceProblem, grid_sensors, unit_square

UNIT = ((0.0, 0.0), (1.0, 1.0))
# -

# ## The source field
#
# A Gaussian bump $f(x) = a \exp(-|x - c|^2 / (2 w^2))$ on the grid; `field[i, j]` is the
# value at $(x_j, y_i)$, so row 0 is the bottom edge.


def gaussian_source(grid, centre=(0.35, 0.6), width=0.08, amplitude=50.0):
    """A Gaussian bump on a ``grid`` x ``grid`` node grid of the unit square."""
    s = np.linspace(0.0, 1.0, grid)
    gx, gy = np.meshgrid(s, s)
    r2 = (gx - centre[0]) ** 2 + (gy - centre[1]) ** 2
    return amplitude * np.exp(-r2 / (2 * width**2))


# ## Solve, observe, differentiate, plot


def plot(field, problem, obs, gradient):
    """Field, solution with sensors, and the gradient of the observation energy.

    Collective on the mesh's communicator; the figure on rank 0, None on the others.
    """
    V = problem.V
    n_owned = V.dofmap.index_map.size_local
    xy = V.tabulate_dof_coordinates()[:n_owned, :2]
    xy = np.concatenate(V.mesh.comm.allgather(xy))
    values = np.concatenate(V.mesh.comm.allgather(problem.u.x.array[:n_owned]))
    if V.mesh.comm.rank != 0:
        return None
    points = problem.sensors.points
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    im = axes[0].imshow(field, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
    axes[0].set_title("source f (grid)")
    fig.colorbar(im, ax=axes[0])
    tri = axes[1].tricontourf(xy[:, 0], xy[:, 1], values, levels=30, cmap="viridis")
    axes[1].scatter(
        points[:, 0], points[:, 1], c=obs, cmap="viridis", norm=tri.norm, edgecolors="k", s=40
    )
    axes[1].set_title("solution u_h and sensor values")
    fig.colorbar(tri, ax=axes[1])
    im = axes[2].imshow(gradient, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r")
    axes[2].set_title("gradient of |y|^2 / 2 w.r.t. f")
    fig.colorbar(im, ax=axes[2])
    for ax in axes:
        ax.set_aspect("equal")
    return fig


def run(n=64, grid=64, sensors=8, out=None):
    """Solve the source problem for a Gaussian bump, return a summary; plot it to ``out``.

    Collective on ``MPI.COMM_WORLD``; with ``out``, rank 0 writes ``forward_demo.png``
    there (its path is the summary's ``plot``).
    """
    comm = MPI.COMM_WORLD
    problem = SourceProblem(unit_square(comm, n), grid_sensors(UNIT, sensors), (grid, grid))
    field = gaussian_source(grid)
    obs = problem.forward(field)  # leaves the state in problem.u
    gradient = problem.vjp(field, obs)  # writes the adjoint state only
    summary = {}
    if out is not None:
        path = pathlib.Path(out) / "forward_demo.png"
        fig = plot(field, problem, obs, gradient)
        if fig is not None:
            save_figure(fig, path, dpi=120)
        summary["plot"] = str(path)
    return {
        **summary,
        "ndofs": problem.V.dofmap.index_map.size_global,
        "n_obs": problem.n_obs,
        "obs_max": float(obs.max()),
        "obs_mean": float(obs.mean()),
        "gradient_norm": float(np.linalg.norm(gradient)),
        "solves": {"forward": problem.counter.forward, "adjoint": problem.counter.adjoint},
    }


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="Forward model demo: plot of source and sensors")
    parser.add_argument("--out", default="results/forward_demo", help="output folder")
    parser.add_argument("--n", type=int, default=64, help="mesh squares per side")
    parser.add_argument("--grid", type=int, default=64, help="grid nodes per side")
    parser.add_argument("--sensors", type=int, default=8, help="sensors per side")
    args = parser.parse_args()
    summary = run(args.n, args.grid, args.sensors, out=args.out)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
