# SPDX-License-Identifier: MIT
"""Forward and gradient timings of the forward models; the last line is one JSON object.

Run: ``python bench/forward_adjoint.py`` (or under ``mpiexec -n 2``). Defaults: 128x128 P1
mesh of the unit square, 8x8 = 64 sensors, a 64x64 grid field, median of 7 repeats.
``gradient_s`` is one forward plus one vector-Jacobian product (adjoint solve and transfers).

- ``SourceProblem`` (hand-written) and ``VariationalProblem`` with the same form
  (``invprior.pde.forms.source_form``) are timed side by side on the same mesh and fields,
  interleaved (each repeat times both on the same new field, in alternating order), so a
  change of the machine's load hits both alike: ``variational_forward_s`` and
  ``variational_gradient_s``, and the medians of the per-repeat ratios
  ``variational_forward_over_handwritten`` and ``variational_over_handwritten`` (gradient).
- The source problem is also timed through its dense map, the forward model
  ``invprior.bridge.DenseObservationMap`` built beside the solving one (``dense_build_s``;
  ``dense_forward_s`` and ``dense_gradient_s`` in torch, float64 on the CPU, the gradient
  being the forward and the backward pass).
- ``ConductivityProblem``: ``conductivity_forward_s``, ``conductivity_gradient_s``.
- Taylor remainder rates of a data misfit's gradient (2 when the gradient is right):
  ``taylor_rate_source`` and ``taylor_rate_conductivity`` for the hand-written models,
  ``taylor_rates`` for ``VariationalProblem`` with each form of
  ``invprior.pde.forms.EXAMPLES`` (source, conductivity, advection_diffusion, nonlinear,
  robin).
"""

import argparse
import json
import time
from functools import partial

from mpi4py import MPI

import numpy as np
import torch

from invprior.bridge import DenseObservationMap
from invprior.pde import (
    ConductivityProblem,
    SourceProblem,
    VariationalProblem,
    grid_sensors,
    taylor_test,
    unit_square,
)
from invprior.pde.forms import EXAMPLES, source_form

UNIT = ((0.0, 0.0), (1.0, 1.0))


def _timed(fn, comm):
    """Seconds of ``fn()``, the slowest rank's."""
    comm.Barrier()
    start = time.perf_counter()
    fn()
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX)


def _median_time(fn, repeats, comm):
    return float(np.median([_timed(fn, comm) for _ in range(repeats)]))


def _field(shape, shift):
    ys, xs = np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1])
    gx, gy = np.meshgrid(xs, ys)
    return np.exp(-((gx - 0.4 - shift) ** 2 + (gy - 0.6) ** 2) / 0.02) + 0.3 * np.sin(3 * gx)


def _side_by_side(problems, grid, repeats, comm):
    """Forward and gradient seconds of ``problems`` on the same fields, interleaved.

    Each repeat times every problem on the same new field, first to last on even repeats
    and last to first on odd ones.

    Returns:
        ``(forward_s, gradient_s)``, each of shape ``(repeats, len(problems))``.
    """
    fields = [0.5 * _field(grid, 0.01 * k) for k in range(repeats + 1)]
    cot = np.linspace(-1.0, 1.0, problems[0].n_obs)
    for problem in problems:
        problem.forward(fields[0])  # warm-up: form compilation, first factorisation
    forward_s = np.zeros((repeats, len(problems)))
    gradient_s = np.zeros((repeats, len(problems)))

    def gradient(problem, field):
        problem.forward(field)
        problem.vjp(field, cot)

    for k, field in enumerate(fields[1:]):
        order = range(len(problems)) if k % 2 == 0 else reversed(range(len(problems)))
        for j in order:
            problem = problems[j]
            forward_s[k, j] = _timed(partial(problem.forward, field), comm)
            gradient_s[k, j] = _timed(partial(gradient, problem, field + 0.1), comm)
    return forward_s, gradient_s


def _taylor_rate(problem, grid):
    """Taylor remainder rate of the gradient of a data misfit at a smooth field."""
    rng = np.random.default_rng(0)
    m, dm = 0.5 * _field(grid, 0.0), rng.standard_normal(grid)
    y = problem.forward(m) + 0.05 * rng.standard_normal(problem.n_obs)

    def misfit(x):
        r = problem.forward(x) - y
        return 0.5 * float(r @ r)

    return taylor_test(misfit, lambda x: problem.vjp(x, problem.forward(x) - y), m, dm)["rate"]


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
    """Measure on an ``n`` x ``n`` mesh; returns the JSON line's dict. Collective."""
    comm = MPI.COMM_WORLD
    mesh = unit_square(comm, n)
    points = grid_sensors(UNIT, sensors)
    shape = (grid, grid)
    start = time.perf_counter()
    source = SourceProblem(mesh, points, shape)
    setup_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    variational = VariationalProblem(mesh, source_form(), points, shape)
    fwd, grad = _side_by_side([source, variational], shape, repeats, comm)
    start = time.perf_counter()
    dense = DenseObservationMap(source)
    dense_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    dense_fwd, dense_grad = _measure_dense(dense, shape, repeats, comm)
    conductivity = ConductivityProblem(mesh, points, shape)
    c_fwd, c_grad = _side_by_side([conductivity], shape, repeats, comm)
    rates = {}
    for name, (form, boundary) in EXAMPLES.items():
        problem = VariationalProblem(mesh, form, points, shape, **boundary)
        rates[name] = _taylor_rate(problem, shape)
        problem.destroy()
    return {
        "ranks": comm.size,
        "ndofs": source.V.dofmap.index_map.size_global,
        "n_obs": source.n_obs,
        "grid": list(shape),
        "forward_s": float(np.median(fwd[:, 0])),
        "gradient_s": float(np.median(grad[:, 0])),
        "setup_factorise_s": setup_s,
        "dense_build_s": dense_s,
        "dense_forward_s": dense_fwd,
        "dense_gradient_s": dense_grad,
        "conductivity_forward_s": float(np.median(c_fwd)),
        "conductivity_gradient_s": float(np.median(c_grad)),
        "variational_forward_s": float(np.median(fwd[:, 1])),
        "variational_gradient_s": float(np.median(grad[:, 1])),
        "variational_forward_over_handwritten": float(np.median(fwd[:, 1] / fwd[:, 0])),
        "variational_over_handwritten": float(np.median(grad[:, 1] / grad[:, 0])),
        "taylor_rate_source": _taylor_rate(source, shape),
        "taylor_rate_conductivity": _taylor_rate(conductivity, shape),
        "taylor_rates": rates,
    }


def main(argv=None):
    """Parse ``argv``, measure, print the JSON line on rank 0 and return the dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="mesh squares per side")
    parser.add_argument("--grid", type=int, default=64, help="grid nodes per side")
    parser.add_argument("--sensors", type=int, default=8, help="sensors per side")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median)")
    args = parser.parse_args(argv)
    if min(args.n, args.grid, args.sensors, args.repeats) < 1:
        parser.error("--n, --grid, --sensors and --repeats must be >= 1")
    result = run(args.n, args.grid, args.sensors, args.repeats)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
