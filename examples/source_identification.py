# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Source identification with a disentangled generative prior
#
# A source $f$ drives $-\nabla\cdot(\kappa\nabla u) = f$ on $\Omega = (0, 1)^2$ with
# $u = 0$ on $\partial\Omega$; 64 point sensors observe $y = B u_h + \varepsilon$,
# $\varepsilon \sim N(0, \sigma^2 I)$ with $\sigma$ 1% of the largest clean reading.
# The prior is a pretrained Aux-VAE $x = G(z_{aux}, z_{rec})$ whose auxiliary block is
# tied to named physical parameters $u = (x_0, y_0, \text{amplitude}, \text{width})$:
#
# $$
# u_j \sim U(\text{training range}), \quad z_{aux} = a(u) + \tau e, \quad
# e, z_{rec} \sim N(0, I), \quad y \mid z \sim N(F(G(z_{aux}, z_{rec})) + m_\varepsilon,
# \sigma^2 I + C_{\varepsilon\varepsilon}),
# $$
#
# where $m_\varepsilon$ and $C_{\varepsilon\varepsilon}$ account for the generator's own
# error (below).
#
# We find the MAP, then sample the posterior with NUTS started there, and read it in two
# layers: the named parameters (with their truth) and the residual field uncertainty.
# The same study runs from `source_identification.toml` with `invprior run`.
#
# Run with `python examples/source_identification.py --out results/source_identification`.

# +
import argparse
import json
import time

from mpi4py import MPI

import numpy as np
import torch

from invprior import infer, priors
from invprior.approximation_error import ApproximationError
from invprior.bridge import TorchForward
from invprior.diagnostics import save_datatree, to_arviz, variance_decomposition
from invprior.model import DisentangledPrior, InverseProblem
from invprior.pde import SourceProblem, grid_sensors, rectangle, write_grid_functions
from invprior.priors.simulate import simulate
from invprior.report import BASELINE, field_maps, study_metrics, write_report
from invprior.sites import FIELD
from invprior.study import BaselineConfig, gp_baseline

# -

# ## Prior, forward model and a held-out truth
#
# The forward model lives on a mesh of the generator's domain; `TorchForward` makes it a
# torch operation whose backward is one adjoint solve.
#
# The generator cannot represent the truth exactly, and with 1% noise that matters: the
# data would pin the latent to a field the prior cannot quite reach. The approximation
# error approach (Kaipio & Somersalo 2007) estimates the generator's error
# $e = x - G(\hat z(x))$ and its image in the data from simulator draws (another seed than
# the truth's), adds the latter's mean and covariance to the noise model,
# $y \mid z \sim N(F(G(z)) + m_\varepsilon, \sigma^2 I + C_{\varepsilon\varepsilon})$, and
# later adds conditional draws of $e$ to the posterior fields.


def setup(
    prior="source-auxvae", n=32, sensors=8, truth_seed=777, noise=0.01, approx_fields=1000,
    comm=None,
):  # fmt: skip
    """The inverse problem, synthetic data, the truth and the approximation error."""
    comm = comm or MPI.COMM_WORLD
    generator = priors.load(prior)
    grid = generator.grid
    pde = SourceProblem(
        rectangle(comm, grid.bbox, (n, n)), grid_sensors(grid.bbox, sensors), grid.shape, grid.bbox
    )
    forward = TorchForward(pde)
    data = simulate("source", 1, truth_seed, grid)
    truth = {"field": data.fields[0].astype(np.float64)}
    truth.update({k: float(data.factors[k][0]) for k in generator.aux_names if k in data.factors})
    clean = pde.forward(truth["field"])
    std = noise * float(np.abs(clean).max())
    draws = simulate("source", approx_fields, 1, grid).fields  # seed 1, not the truth's
    approx = ApproximationError.estimate(generator, draws, forward)
    problem = InverseProblem(DisentangledPrior(generator), forward, approx.likelihood(std))
    noisy = clean + std * np.random.default_rng(0).standard_normal(clean.shape)
    return problem, problem.check_obs(torch.as_tensor(noisy)), truth, pde, approx, std


# ## MAP, then NUTS from the MAP
#
# The MAP minimises the potential $U(\zeta)$ over the unconstrained latent from several
# prior draws (L-BFGS). NUTS (Hoffman & Gelman 2014) then adapts its step size and a dense
# mass matrix during warm-up; a failed PDE solve would count as a divergence.


def run(
    out="results/source_identification",
    prior="source-auxvae",
    n=32,
    sensors=8,
    num_samples=300,
    warmup_steps=300,
    num_restarts=4,
    seed=0,
    baseline_fields=2000,
    approx_fields=1000,
):
    """Run the study and write the DataTree and report into ``out``; returns the metrics."""
    tic = time.perf_counter()
    comm = MPI.COMM_WORLD
    problem, obs, truth, pde, approx, std = setup(
        prior, n, sensors, approx_fields=approx_fields, comm=comm
    )
    start = infer.map(problem, obs, num_restarts=num_restarts, seed=seed)
    result = infer.nuts(
        problem,
        obs,
        init=start,
        seed=seed,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        max_tree_depth=6,
        target_accept_prob=0.85,
        disable_progbar=comm.rank != 0,
    )
    tree = to_arviz(
        result, problem, obs, sensor_coords=pde.sensors.points[:, :2], include_field=True,
        truth=truth,
    )  # fmt: skip
    # Posterior fields: the generator's field plus a conditional draw of its error.
    fields = approx.posterior_fields(result.samples[FIELD], obs, problem.forward, std, seed)
    tree["posterior"][FIELD] = tree["posterior"][FIELD].copy(data=fields.numpy())
    # The classical baseline on the same data, with the measurement noise only (see below).
    measured = InverseProblem(problem.prior, problem.forward, std)
    tree[BASELINE] = baseline(measured, obs, baseline_fields)
    metrics = study_metrics(tree)
    # The two-layer reading: how much of the posterior field variance the names carry.
    metrics["named_variance_share"] = variance_decomposition(problem, result.samples).named_share
    metrics["pde_solves"] = pde.counter.total
    # Mean, std, 5%/95% quantiles, truth and baseline as P1 functions for ParaView (all ranks).
    write_grid_functions(pde.Q, pde.transfer, field_maps(tree), f"{out}/fields.xdmf")
    if comm.rank == 0:
        save_datatree(tree, f"{out}/posterior.nc")
        write_report(tree, out)
    metrics["wall_s"] = time.perf_counter() - tic
    return metrics


# ## The classical baseline
#
# The "oracle" Gaussian prior $x \sim N(\bar x, C)$, with $\bar x$ and $C$ the empirical mean
# and covariance of 2000 simulator draws (here from the generator's training seed), is
# what a careful classical analysis would use. Its posterior on the same data and noise is
# Gaussian; since the forward model is linear, MAP + Laplace gives it exactly.


def baseline(problem, obs, num_fields=2000):
    """Posterior summaries of the oracle Gaussian prior (an ``xarray.Dataset``)."""
    recipe = getattr(problem.prior.generator, "metadata", {}).get("data", {})
    config = BaselineConfig(num_fields=num_fields, seed=recipe.get("seed", 0))
    return gp_baseline(problem, obs, "source", config, linear=True)


# ## Command line

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Source identification: MAP then NUTS")
    parser.add_argument("--out", default="results/source_identification", help="output folder")
    parser.add_argument("--prior", default="source-auxvae", help="prior name or checkpoint")
    parser.add_argument("--num-samples", type=int, default=300, help="draws per chain")
    parser.add_argument("--warmup-steps", type=int, default=300, help="warm-up per chain")
    args = parser.parse_args()
    summary = run(
        args.out, args.prior, num_samples=args.num_samples, warmup_steps=args.warmup_steps
    )
    if MPI.COMM_WORLD.rank == 0:
        print(f"report: {args.out}")
        print(json.dumps(summary))
