# SPDX-License-Identifier: MIT
r"""Batched ChEES-HMC against NUTS, and sampling a 4225-coordinate field; one JSON line last.

Run: ``python bench/sampling_throughput.py [--chains 16] [--warmup 150] [--samples 150]
[--field-chains 16] [--field-warmup 100] [--field-samples 200] [--n 64] [--seed 0]
[--threads 1] [--field-threads 2]``: the demo part compares the samplers on one torch
thread each, the field part uses the whole 2-core machine (leave ``OMP_NUM_THREADS`` unset
or at 2).

**The demo problem** (``examples/source_identification.toml``, built as ``invprior run``
builds it, with the dense observation map): one MAP with the file's ``[map]`` settings,
then side by side in this run NUTS with the file's ``[mcmc]`` settings but
``--nuts-draws`` warm-up iterations and draws per chain (default 400: the NUTS reference
the sampling-speed target was set against; the demo itself now draws 1000 per chain for
its diagnostics, see docs/scaling.md) and
:func:`invprior.infer.chees` with ``--chains`` chains of ``--warmup`` + ``--samples``
iterations from the same MAP (the harmonic mean acceptance targeted at
``--target-accept-prob``, the file's other ``[mcmc]`` settings). For each:
``ess_min_named`` (smallest bulk ESS over the named parameters, ``arviz_stats.ess`` of
:func:`invprior.datatree.to_arviz`), ``wall_s`` (sampling with warm-up, the Laplace
preconditioner included, all chains), ``ess_per_min_named = ess_min_named / wall_s * 60``,
``rhat_max`` over the named parameters, ``divergences`` and ``grad_evals`` (potential
evaluations, one per chain and leapfrog step). Keys: ChEES without prefix, NUTS with
``nuts_``, and ``speedup_vs_nuts = ess_per_min_named / nuts_ess_per_min_named``.

**The Gaussian field** (``bench/map_newton.py``'s :func:`gaussian_field_problem`: a
Matern prior with ``(n + 1)^2`` latent coordinates, 64 sensors, 1% noise, dense map):
``map_s`` and ``map_gradient_evals`` of the Newton MAP and ``lbfgs_map_s``,
``lbfgs_map_gradient_evals`` of L-BFGS from the same start (200 iterations); then ChEES
from the Newton MAP with the Laplace covariance kept as a fixed preconditioner
(``adapt_mass=False``; only the step size and trajectory length adapt, so a short warm-up
does). Its draws of the spatial mean of the field, a linear functional
whose posterior mean and standard deviation are known in closed form
(:func:`exact_posterior`), give ``field_ess`` (bulk ESS), ``field_wall_s``,
``field_ess_per_min``, ``field_rhat``, ``field_mean_z`` and ``field_sd_z`` (the errors of
the sample mean and standard deviation in units of their Monte Carlo standard errors:
within about 3 when the exact moments are recovered).
"""

import argparse
import dataclasses
import json
import time

from mpi4py import MPI

import arviz_stats
import numpy as np
import torch
from gradient_cost import CONFIG, build_problem
from map_newton import _timed_map, exact_posterior, gaussian_field_problem

from invprior import infer
from invprior.datatree import to_arviz
from invprior.infer.common import seeded
from invprior.potential import potential_energy
from invprior.study import StudyConfig


def _named_throughput(problem, obs, sampler, start, config, seed):
    """ESS, R-hat, wall time and divergences of the named parameters of one sampler run."""
    tic = time.perf_counter()
    result = sampler(problem, obs, init=start, seed=seed, config=config)
    wall = time.perf_counter() - tic
    tree = to_arviz(result, problem, obs, posterior_predictive=False, warn=False)
    names = list(problem.prior.aux_names)
    ess = arviz_stats.ess(tree, var_names=names, method="bulk")
    rhat = arviz_stats.rhat(tree, var_names=names)
    ess_min = min(float(ess[name]) for name in names)
    return {
        "ess_min_named": ess_min,
        "wall_s": wall,
        "ess_per_min_named": ess_min / wall * 60,
        "rhat_max": max(float(rhat[name]) for name in names),
        "divergences": result.num_divergences,
        "grad_evals": sum(chain["num_evals"] for chain in result.chain_stats),
        "num_chains": config.num_chains,
        "num_samples": config.num_samples,
        "warmup_steps": config.warmup_steps,
    }


def demo(args, config_path=CONFIG):
    """NUTS with the file's settings and ChEES on the demo problem (flat dict)."""
    config = StudyConfig.from_toml(config_path)
    problem, obs, _ = build_problem(config, MPI.COMM_SELF)
    start = infer.map(problem, obs, seed=config.study.seed, config=config.map)
    nuts_config = dataclasses.replace(config.mcmc, store_field=False, disable_progbar=True)
    nuts_config = dataclasses.replace(
        nuts_config, warmup_steps=args.nuts_draws, num_samples=args.nuts_draws
    )
    chees_config = dataclasses.replace(
        nuts_config,
        num_chains=args.chains,
        warmup_steps=args.warmup,
        num_samples=args.samples,
        target_accept_prob=args.target_accept_prob,
    )
    seed = args.seed
    nuts = _named_throughput(problem, obs, infer.nuts, start, nuts_config, seed)
    chees = _named_throughput(problem, obs, infer.chees, start, chees_config, seed)
    problem.forward.model.destroy()
    out = dict(chees) | {f"nuts_{key}": value for key, value in nuts.items()}
    out["speedup_vs_nuts"] = chees["ess_per_min_named"] / nuts["ess_per_min_named"]
    return out


def gaussian_field(n, chains, warmup, samples, seed, target_accept_prob=0.651):
    """Newton and L-BFGS MAPs and fixed-preconditioner ChEES on the Gaussian field."""
    problem, obs, _ = gaussian_field_problem(MPI.COMM_SELF, seed, n)
    mean, cov = exact_posterior(problem, obs)
    with seeded(seed + 1, torch.device("cpu")):
        start = potential_energy(problem, obs).prior_latents(1)[0]
    newton_s, newton = _timed_map(problem, obs, start, optimizer="newton")
    lbfgs_s, lbfgs = _timed_map(problem, obs, start, max_iterations=200)
    out = {"field_latent_dim": len(mean), "map_s": newton_s, "lbfgs_map_s": lbfgs_s}
    out["map_gradient_evals"] = newton.gradient_evals
    out["lbfgs_map_gradient_evals"] = lbfgs.gradient_evals
    out["map_gradient_evals_ratio"] = lbfgs.gradient_evals / newton.gradient_evals
    # the spatial mean of the field: w . z + const, exact mean and sd from the posterior
    gen = problem.prior.generator
    weights = gen.basis.mean(0)
    exact_mean, exact_sd = float(weights @ mean), float(weights @ cov @ weights) ** 0.5
    tic = time.perf_counter()
    result = infer.chees(
        problem, obs, init=newton, seed=seed, num_chains=chains, warmup_steps=warmup,
        num_samples=samples, target_accept_prob=target_accept_prob, adapt_mass=False,
        store_field=False, disable_progbar=True,
    )  # fmt: skip
    wall = time.perf_counter() - tic
    functional = (result.latent @ weights).numpy()  # (chain, draw)
    ess = float(arviz_stats.ess(functional, method="bulk"))
    out |= {
        "field_ess": ess,
        "field_wall_s": wall,
        "field_ess_per_min": ess / wall * 60,
        "field_rhat": float(arviz_stats.rhat(functional)),
        "field_mean_z": (functional.mean() - exact_mean)
        / float(arviz_stats.mcse(functional, method="mean")),
        "field_sd_z": (functional.std() - exact_sd)
        / float(arviz_stats.mcse(functional, method="sd")),
        "field_divergences": result.num_divergences,
        "field_num_chains": chains,
        "field_step_size": result.chain_stats[0]["step_size"],
        "field_mean_n_steps": float(np.mean(result.sample_stats["n_steps"])),
    }
    problem.forward.model.destroy()
    return out


def run(args):
    """Both parts as one flat dict (see the module docstring for the keys)."""
    previous = torch.get_num_threads()
    out = {"threads": args.threads, "field_threads": args.field_threads, "seed": args.seed}
    try:
        torch.set_num_threads(args.threads)
        out |= demo(args)
        torch.set_num_threads(args.field_threads)
        out |= gaussian_field(
            args.n, args.field_chains, args.field_warmup, args.field_samples, args.seed,
            args.target_accept_prob,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous)
    return out


def main(argv=None):
    """Parse ``argv``, run both parts, print the JSON line and return the dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=16, help="ChEES chains, demo problem")
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument(
        "--target-accept-prob", type=float, default=0.651,
        help="ChEES: target of the harmonic mean acceptance (the paper's 0.651)",
    )  # fmt: skip
    parser.add_argument(
        "--nuts-draws", type=int, default=400,
        help="NUTS warm-up and draws per chain (default 400, the reference run)",
    )  # fmt: skip
    parser.add_argument("--field-chains", type=int, default=16)
    parser.add_argument("--field-warmup", type=int, default=100)
    parser.add_argument("--field-samples", type=int, default=200)
    parser.add_argument("--n", type=int, default=64, help="Gaussian field: squares per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, demo part")
    parser.add_argument(
        "--field-threads", type=int, default=2,
        help="torch threads of the Gaussian field part (default 2: the whole 2-core machine)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    counts = (args.chains, args.samples, args.field_chains, args.field_samples, args.threads)
    counts += (args.field_threads,)
    if min(counts) < 1 or min(args.warmup, args.field_warmup) < 0 or args.n < 2:
        parser.error("chains, samples and threads must be >= 1, warm-up >= 0, --n >= 2")
    result = run(args)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
