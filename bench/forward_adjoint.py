# SPDX-License-Identifier: MIT
"""Forward and gradient timings of the two forward models; the last line is one JSON object.

Run: ``python bench/forward_adjoint.py`` (or under ``mpiexec -n 2``). Defaults: 128x128 P1
mesh of the unit square, 8x8 = 64 sensors, a 64x64 grid field, median of 7 repeats.
``gradient_s`` is one forward plus one vector-Jacobian product (adjoint solve and transfers).
The source problem is also timed through its dense map, the forward model
``invprior.bridge.DenseObservationMap`` built beside the solving one (``dense_build_s``;
``dense_forward_s`` and ``dense_gradient_s`` in torch, float64 on the CPU, the gradient
being the forward and the backward pass).
"""

import argparse
import json
import time

from mpi4py import MPI

import numpy as np
import torch

from invprior.bridge import DenseObservationMap
from invprior.pde import (
    ConductivityProblem,
    SourceProblem,
    grid_sensors,
    taylor_test,
    unit_square,
)

UNIT = ((0.0, 0.0), (1.0, 1.0))


def _median_time(fn, repeats, comm):
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        times.append(comm.allreduce(time.perf_counter() - start, op=MPI.MAX))
    return float(np.median(times))


def _field(shape, shift):
    ys, xs = np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1])
    gx, gy = np.meshgrid(xs, ys)
    return np.exp(-((gx - 0.4 - shift) ** 2 + (gy - 0.6) ** 2) / 0.02) + 0.3 * np.sin(3 * gx)


def _measure(problem, grid, repeats, comm):
    fields = [0.5 * _field(grid, 0.01 * k) for k in range(repeats + 1)]
    cot = np.linspace(-1.0, 1.0, problem.n_obs)
    problem.forward(fields[0])  # warm-up: form compilation, first factorisation
    it = iter(fields[1:])
    forward_s = _median_time(lambda: problem.forward(next(it)), repeats, comm)
    it = iter([f + 0.1 for f in fields[1:]])

    def gradient():
        field = next(it)
        problem.forward(field)
        problem.vjp(field, cot)

    gradient_s = _median_time(gradient, repeats, comm)
    rng = np.random.default_rng(0)
    m, dm = fields[0], rng.standard_normal(grid)
    y = problem.forward(m) + 0.05 * rng.standard_normal(problem.n_obs)

    def misfit(x):
        r = problem.forward(x) - y
        return 0.5 * float(r @ r)

    taylor = taylor_test(misfit, lambda x: problem.vjp(x, problem.forward(x) - y), m, dm)
    return forward_s, gradient_s, taylor["rate"]


def _measure_dense(dense, grid, repeats, comm):
    """Median seconds of ``dense`` forward and forward plus backward, in torch."""
    fields = [torch.as_tensor(0.5 * _field(grid, 0.01 * k)) for k in range(repeats + 1)]
    cot = torch.linspace(-1.0, 1.0, dense.n_obs, dtype=torch.float64)
    dense(fields[0])  # warm-up
    it = iter(fields[1:])
    forward_s = _median_time(lambda: dense(next(it)), repeats, comm)
    it = iter([(f + 0.1).requires_grad_() for f in fields[1:]])

    def gradient():
        field = next(it)
        torch.autograd.grad(dense(field), field, cot)

    return forward_s, _median_time(gradient, repeats, comm)


def run(n=128, grid=64, sensors=8, repeats=7):
    comm = MPI.COMM_WORLD
    mesh = unit_square(comm, n)
    points = grid_sensors(UNIT, sensors)
    shape = (grid, grid)
    start = time.perf_counter()
    source = SourceProblem(mesh, points, shape)
    setup_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    fwd, grad, rate = _measure(source, shape, repeats, comm)
    start = time.perf_counter()
    dense = DenseObservationMap(source)
    dense_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    dense_fwd, dense_grad = _measure_dense(dense, shape, repeats, comm)
    conductivity = ConductivityProblem(mesh, points, shape)
    c_fwd, c_grad, c_rate = _measure(conductivity, shape, repeats, comm)
    return {
        "ranks": comm.size,
        "ndofs": source.V.dofmap.index_map.size_global,
        "n_obs": source.n_obs,
        "grid": list(shape),
        "forward_s": fwd,
        "gradient_s": grad,
        "setup_factorise_s": setup_s,
        "dense_build_s": dense_s,
        "dense_forward_s": dense_fwd,
        "dense_gradient_s": dense_grad,
        "conductivity_forward_s": c_fwd,
        "conductivity_gradient_s": c_grad,
        "taylor_rate_source": rate,
        "taylor_rate_conductivity": c_rate,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="mesh squares per side")
    parser.add_argument("--grid", type=int, default=64, help="grid nodes per side")
    parser.add_argument("--sensors", type=int, default=8, help="sensors per side")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    result = run(args.n, args.grid, args.sensors, args.repeats)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result))
