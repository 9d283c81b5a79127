# SPDX-License-Identifier: MIT
"""NUTS throughput on the source example, without and with the dense map; one JSON line last.

Run: ``python bench/nuts_throughput.py [--warmup 100] [--samples 100] [--chains 1]
[--max-tree-depth 6] [--seed 0] [--threads 1]`` (or under ``mpiexec -n 2``). The
problem is that of ``examples/source_identification.toml`` (``--config``), built as
``invprior run`` builds it (``gradient_cost.build_problem``); the chains start at its MAP
(:func:`invprior.infer.map` with the file's ``[map]`` settings, computed once) and use
its other ``[mcmc]`` settings (target acceptance, Laplace initial mass matrix).

The same chains run twice with the same seed: with one forward and one adjoint solve per
gradient (``dense=False``) and with the dense observation map (``dense=True``, the
default of ``invprior run`` for this problem, keys ``dense_*``: the same problem with the
forward model ``invprior.bridge.DenseObservationMap`` built beside the solving one before
its chains, ``dense_build_s``). For each run: ``wall_s`` (sampling, warm-up included,
summed over chains), ``grad_evals`` (potential evaluations with gradient, the chains'
``num_evals``), ``grad_eval_s`` (``wall_s / grad_evals``), ``ess``
(the smallest bulk ESS over the named parameters: ``arviz_stats.ess`` of
:func:`invprior.datatree.to_arviz`), ``ess_per_s`` (``ess / wall_s``),
``pde_solves`` (forward plus adjoint solves of the sampling; for the dense run those of
building the map, since its chains solve nothing) and ``ess_per_pde_solve``
(``ess / pde_solves``). ``dense_speedup`` is ``grad_eval_s / dense_grad_eval_s``, the
ratio that does not depend on how the two runs' chains drift apart in floating point.
``default`` names the default and ``default_reason`` says why.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from mpi4py import MPI

import arviz_stats
import torch
from gradient_cost import CONFIG, build_problem, timed

from invprior import infer
from invprior.bridge import DenseObservationMap
from invprior.datatree import to_arviz
from invprior.model import InverseProblem
from invprior.study import StudyConfig

DEFAULT = "dense=True"
DEFAULT_REASON = (
    "invprior run uses the dense map for the source problem ([pde] dense, on by default "
    "there): it is exact for this linear problem, costs n_obs adjoint solves once and an "
    "n_obs x (ny nx) matrix that does not grow with the mesh, and dense_speedup is the gain "
    "per gradient; the conductivity problem is nonlinear and always solves"
)


def _throughput(problem, obs, start, config, seed):
    """NUTS from ``start``: ESS, wall time, gradient evaluations and PDE solves."""
    result = infer.nuts(problem, obs, init=start, seed=seed, config=config)
    tree = to_arviz(result, problem, obs, posterior_predictive=False, warn=False)  # short runs
    names = list(problem.prior.aux_names)
    per_name = arviz_stats.ess(tree, var_names=names, method="bulk")
    ess = min(float(per_name[name]) for name in names)
    wall = sum(chain["wall_s"] for chain in result.chain_stats)
    grad_evals = sum(chain["num_evals"] for chain in result.chain_stats)
    return {
        "ess": ess,
        "wall_s": wall,
        "grad_evals": grad_evals,
        "grad_eval_s": wall / grad_evals,
        "ess_per_s": ess / wall,
        "pde_solves": sum(result.pde_solves.values()),
        "num_divergences": result.num_divergences,
    }


def run(warmup=100, samples=100, chains=1, max_tree_depth=6, seed=0, threads=1, config=CONFIG):
    """Both runs as one flat dict (see the module docstring for the keys)."""
    comm = MPI.COMM_WORLD
    source = StudyConfig.from_toml(config)
    source = dataclasses.replace(source, pde=dataclasses.replace(source.pde, dense=False))
    if source.pde.kind != "source":
        raise ValueError(
            f"{config} has [pde] kind = {source.pde.kind!r}; the dense map needs 'source'"
        )
    mcmc = dataclasses.replace(
        source.mcmc,
        warmup_steps=warmup,
        num_samples=samples,
        num_chains=chains,
        max_tree_depth=max_tree_depth,
        store_field=False,
        disable_progbar=True,
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        problem, obs, _ = build_problem(source, comm)
        model = problem.forward.model
        start = infer.map(problem, obs, seed=source.study.seed, config=source.map)
        sparse = _throughput(problem, obs, start, mcmc, seed)
        before = model.counter.total
        build_s, forward = timed(comm, DenseObservationMap, model)
        build_solves = model.counter.total - before
        dense_problem = InverseProblem(problem.prior, forward, problem.likelihood)
        dense = _throughput(dense_problem, obs, start, mcmc, seed)
        model.destroy()
    finally:
        torch.set_num_threads(previous)
    dense["pde_solves"] += build_solves
    out = {"ranks": comm.size, "threads": threads, "n_obs": problem.n_obs, "seed": seed}
    out["warmup_steps"] = warmup
    out |= {"num_samples": samples, "num_chains": chains, "max_tree_depth": max_tree_depth}
    for prefix, result in (("", sparse), ("dense_", dense)):
        result["ess_per_pde_solve"] = result["ess"] / result["pde_solves"]
        out |= {f"{prefix}{key}": value for key, value in result.items()}
    out["dense_build_s"] = build_s
    out["dense_speedup"] = sparse["grad_eval_s"] / dense["grad_eval_s"]
    return out | {"default": DEFAULT, "default_reason": DEFAULT_REASON}


def main(argv=None):
    """Parse ``argv``, sample, print the JSON line on rank 0 and return the dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=100, help="warm-up steps per chain")
    parser.add_argument("--samples", type=int, default=100, help="draws per chain")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--max-tree-depth", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="seed of the chains")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--config", type=Path, default=CONFIG, help="source study TOML")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    result = run(
        args.warmup,
        args.samples,
        args.chains,
        args.max_tree_depth,
        args.seed,
        args.threads,
        args.config,
    )
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
