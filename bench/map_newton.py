# SPDX-License-Identifier: MIT
r"""Newton MAP against L-BFGS on a Gaussian-field source problem; the last line is one JSON object.

Run: ``python bench/map_newton.py [--n 64] [--sensors 8] [--seed 0] [--threads 1]
[--lbfgs-iterations 200]``. ``--threads`` sets torch's threads; set ``OMP_NUM_THREADS``
as well to keep BLAS to the same number.

The problem (:func:`gaussian_field_problem`): a
:class:`~invprior.priors.GaussianFieldGenerator` with the full-rank Matern basis
(:math:`\nu = 3/2`, :math:`\ell = 0.2`, unit variance) on an ``(n + 1) x (n + 1)`` grid of
the unit square (``n = 64``: 4225 latent coordinates), the source problem on a mesh of
``n x n`` squares with ``sensors x sensors`` point sensors, observed through the dense
observation map (:class:`invprior.bridge.DenseObservationMap`), and noise of standard
deviation 1% of the largest clean reading of a truth drawn from the prior. It is linear
and Gaussian, so the posterior is known in closed form (:func:`exact_posterior`).

One MAP (one restart, the same start, a prior draw) with ``optimizer="newton"`` and with
``optimizer="lbfgs"`` (``max_iterations`` from ``--lbfgs-iterations``, other settings the
defaults of :class:`invprior.infer.MapConfig`). Keys: ``map_s`` and ``lbfgs_map_s``
(wall time of :func:`invprior.infer.map`), ``map_gradient_evals`` and
``lbfgs_map_gradient_evals`` (``MapResult.gradient_evals``: reverse passes, a batched
Jacobian counting one), ``map_jacobian_evals``, ``map_vector_jacobian_products`` (the
same count with each Jacobian counted as its ``n_obs`` rows), ``map_energy`` and
``lbfgs_map_energy`` (:math:`U` at the end), ``map_error`` and ``lbfgs_map_error`` (the
largest absolute difference of the MAP latent to the exact posterior mean), and the
ratios ``speedup`` (``lbfgs_map_s / map_s``) and ``gradient_evals_ratio``
(``lbfgs_map_gradient_evals / map_gradient_evals``).
"""

import argparse
import json
import time

from mpi4py import MPI

import torch

from invprior import infer
from invprior.bridge import DenseObservationMap
from invprior.infer.common import seeded
from invprior.model import InverseProblem
from invprior.pde import SourceProblem, grid_sensors, unit_square
from invprior.potential import potential_energy
from invprior.priors import GaussianFieldGenerator, GridSpec
from invprior.sites import Z_REC


def gaussian_field_problem(comm, seed=0, n=64, sensors=8):
    """The Gaussian-field source problem, its data and the truth (see the module docstring).

    Args:
        comm: Communicator of the mesh (building the dense map is collective on it).
        seed: Seed of the truth and of the noise.
        n: Mesh squares per side; the grid has ``(n + 1) x (n + 1)`` nodes.
        sensors: Sensors per side.

    Returns:
        ``(problem, obs, truth_field)``: an :class:`~invprior.model.InverseProblem` in
        float64, data of shape ``(sensors**2,)`` and the true field ``(n + 1, n + 1)``.
    """
    grid = GridSpec((n + 1, n + 1))
    with seeded(seed, torch.device("cpu")):
        # in the default dtype, then float64: the prior is the one with the rounded basis
        prior = GaussianFieldGenerator.matern(grid, 1.0, 0.2, nu=1.5, rank=(n + 1) ** 2).double()
        pde = SourceProblem(unit_square(comm, n), grid_sensors(grid.bbox, sensors), grid.shape)
        forward = DenseObservationMap(pde)
        z = torch.randn(prior.rec_dim, dtype=torch.float64)
        truth = prior.decode(z.new_zeros(0), z)
        clean = forward(truth)
        noise_std = 0.01 * float(clean.abs().max())
        obs = clean + noise_std * torch.randn_like(clean)
    return InverseProblem(prior, forward, noise_std), obs, truth


def exact_posterior(problem, obs):
    r"""Mean ``(dim,)`` and covariance ``(dim, dim)`` of the latent ``z_rec``, in closed form.

    With :math:`x = \bar x + L z`, :math:`y = F x + c + \sigma \xi` and :math:`z \sim N(0, I)`:
    precision :math:`P = I + A^T A / \sigma^2` with :math:`A = F L`, mean
    :math:`P^{-1} A^T (y - F \bar x - c) / \sigma^2`. :math:`F` and :math:`c` come from the
    PDE model's own ``affine_map`` (not from the torch code the MAP runs through).
    """
    gen = problem.prior.generator
    F, c = (torch.from_numpy(a) for a in problem.forward.model.affine_map())
    a = F @ gen.basis
    residual = obs - F @ gen.mean.reshape(-1) - c
    weight = problem.likelihood.noise_std.to(a).square().reciprocal()
    precision = torch.eye(gen.rec_dim, dtype=a.dtype) + weight * a.T @ a
    chol = torch.linalg.cholesky(precision)
    mean = torch.cholesky_solve((weight * a.T @ residual).unsqueeze(-1), chol).squeeze(-1)
    return mean, torch.cholesky_inverse(chol)


def _timed_map(problem, obs, start, **config):
    """``(seconds, MapResult)`` of one MAP from ``start``."""
    begin = time.perf_counter()
    result = infer.map(problem, obs, initial_latent=start, num_restarts=1, **config)
    return time.perf_counter() - begin, result


def run(n=64, sensors=8, seed=0, threads=1, lbfgs_iterations=200):
    """Both MAPs as one flat dict (see the module docstring for the keys)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        problem, obs, _ = gaussian_field_problem(MPI.COMM_WORLD, seed, n, sensors)
        mean, _ = exact_posterior(problem, obs)
        with seeded(seed + 1, torch.device("cpu")):
            start = potential_energy(problem, obs).prior_latents(1)[0]
        newton_s, newton = _timed_map(problem, obs, start, optimizer="newton")
        lbfgs_s, lbfgs = _timed_map(problem, obs, start, max_iterations=lbfgs_iterations)
    finally:
        torch.set_num_threads(previous)
    problem.forward.model.destroy()
    out = {"threads": threads, "grid": (n + 1) ** 2, "latent_dim": len(mean)}
    out |= {"n_obs": problem.n_obs, "lbfgs_iterations": lbfgs_iterations, "seed": seed}
    for prefix, seconds, result in (("", newton_s, newton), ("lbfgs_", lbfgs_s, lbfgs)):
        out[f"{prefix}map_s"] = seconds
        out[f"{prefix}map_gradient_evals"] = result.gradient_evals
        out[f"{prefix}map_energy"] = result.potential_energy
        out[f"{prefix}map_error"] = float((result.sites[Z_REC] - mean).abs().max())
    out["map_jacobian_evals"] = newton.jacobian_evals
    out["map_vector_jacobian_products"] = newton.gradient_evals + newton.jacobian_evals * (
        problem.n_obs - 1
    )
    out["speedup"] = lbfgs_s / newton_s
    out["gradient_evals_ratio"] = lbfgs.gradient_evals / newton.gradient_evals
    return out


def main(argv=None):
    """Parse ``argv``, run both MAPs, print the JSON line on rank 0 and return the dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="mesh squares per side")
    parser.add_argument("--sensors", type=int, default=8, help="sensors per side")
    parser.add_argument("--seed", type=int, default=0, help="seed of truth, noise and start")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--lbfgs-iterations", type=int, default=200, help="L-BFGS max_iter")
    args = parser.parse_args(argv)
    if min(args.n, args.sensors, args.threads, args.lbfgs_iterations) < 1:
        parser.error("--n, --sensors, --threads and --lbfgs-iterations must be >= 1")
    result = run(args.n, args.sensors, args.seed, args.threads, args.lbfgs_iterations)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
