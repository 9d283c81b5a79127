# SPDX-License-Identifier: MIT
r"""Time of one log-posterior gradient split into its parts; the last line is one JSON object.

Run: ``python bench/gradient_cost.py [--problem source|conductivity|both] [--repeats 7]
[--threads 1]`` (or under ``mpiexec -n 2``). ``--threads`` sets torch's threads; set
``OMP_NUM_THREADS`` as well to keep the solver's BLAS to the same number.

The problems are built as ``invprior run examples/source_identification.toml`` builds
them (:func:`build_problem`): the shipped prior on its 64x64 grid, a 32x32 mesh of the
grid's box, 8x8 = 64 sensors, noise of 1% of the largest clean reading of a held-out
simulator field. The conductivity problem is the same study with ``[pde] kind =
"conductivity"``, the ``conductivity-auxvae`` prior and the conductivity simulator.

At ``repeats`` prior draws of the unconstrained latent (after one warm-up draw, which
also compiles the forms) every part is timed with the same inputs; each number is the
median over the draws of the slowest rank's time:

- ``gradient_s``: value and gradient of :class:`invprior.potential.PotentialEnergy`
  (``torch.autograd.grad`` on the flat unconstrained latent), the unit NUTS pays per
  leapfrog step;
- ``generator_s``: the prior's decode of the draw's site values and its vector-Jacobian
  product with a random cotangent;
- ``transfer_s``: the grid-to-mesh transfer :math:`T` of the field plus :math:`T^T` of a
  mesh cotangent (``model.transfer``);
- ``pde_forward_s``, ``pde_adjoint_s``: ``model.forward(field)`` and ``model.vjp(field,
  cotangent)`` at the decoded field (float64, as the bridge passes it) with the
  likelihood's cotangent :math:`(F(m) - y) / \sigma^2`, each less the median time of the
  transfer it applies. The conductivity problem's ``vjp`` reuses the state of the
  ``forward`` just before it, as in a gradient.

``overhead_fraction`` is ``(gradient_s - generator_s - transfer_s - pde_forward_s -
pde_adjoint_s) / gradient_s`` clipped at 0 (``overhead_fraction_raw`` unclipped): the
share of the framework (bijections, prior and likelihood densities, the torch bridge's
copies, autograd). The target is at most 0.25 on a CPU. The source problem is also
timed with the dense observation map (``dense_*`` keys; ``model.dense = True``, built
once, ``dense_build_s``): forward and ``vjp`` become products with the ``n_obs x (ny nx)``
matrix, which contains :math:`T`, so ``dense_transfer_s`` is 0. Keys of the conductivity
problem carry the prefix ``conductivity_``; ``pde_solves_per_gradient`` checks that a
gradient costs one forward and one adjoint solve.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np
import torch

from invprior.infer.common import prior_latents
from invprior.potential import PotentialEnergy
from invprior.study import PDEConfig, PriorConfig, StudyConfig, build_study

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "source_identification.toml"
PARTS = ("generator_s", "transfer_s", "pde_forward_s", "pde_adjoint_s")


def conductivity_config(config):
    """The study ``config`` with the conductivity PDE, prior and simulator."""
    return dataclasses.replace(
        config,
        pde=PDEConfig(kind="conductivity"),
        prior=PriorConfig(name="conductivity-auxvae"),
        truth=dataclasses.replace(config.truth, simulator="conductivity"),
    )


def build_problem(config, comm):
    """The inverse problem of a study, its data and measurement noise std (``build_study``)."""
    setup = build_study(config, comm)
    return setup.problem, setup.obs, setup.noise_std


def timed(comm, fn, *args):
    """``(seconds, fn(*args))``, the seconds of the slowest rank."""
    comm.Barrier()
    start = time.perf_counter()
    out = fn(*args)
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX), out


def _median(times):
    return float(np.median(times))


def _gradient(potential, latent):
    latent = latent.detach().requires_grad_(True)
    return torch.autograd.grad(potential.flat(latent), latent)[0]


def _generator_vjp(prior, values, cotangent):
    leaves = {name: value.detach().requires_grad_(True) for name, value in values.items()}
    field = prior.decode(leaves)
    return torch.autograd.grad(field, tuple(leaves.values()), cotangent)


def _pde_times(model, fields, obs, std, comm):
    """Median ``forward`` and ``vjp`` times at ``fields[1:]`` (``fields[0]``: warm-up)."""
    model.forward(fields[0])  # another field first: a cached conductivity state is not reused
    forward, adjoint = [], []
    for field in fields[1:]:
        seconds, prediction = timed(comm, model.forward, field)
        forward.append(seconds)
        adjoint.append(timed(comm, model.vjp, field, (prediction - obs) / std**2)[0])
    return _median(forward), _median(adjoint)


def _transfer_times(transfer, fields, comm):
    """Median times of ``T m`` and of ``T^T`` of a mesh vector."""
    apply = [timed(comm, transfer.apply, field)[0] for field in fields[1:]]
    mesh_values = [transfer.apply(field) for field in fields[1:]]
    transpose = [timed(comm, transfer.apply_transpose, q)[0] for q in mesh_values]
    return _median(apply), _median(transpose)


def measure(problem, obs, std, latents, comm):
    """The parts of one gradient at the latents ``(1 + repeats, dim)``; see the docstring."""
    model = problem.forward.model
    potential = PotentialEnergy(problem, obs)
    _gradient(potential, latents[0])
    model.counter.reset()
    gradient = _median([timed(comm, _gradient, potential, z)[0] for z in latents[1:]])
    solves = model.counter.total / (len(latents) - 1)
    with torch.no_grad():
        values = [potential.constrain(potential.layout.unpack(z)) for z in latents]
        fields = [problem.prior.decode(v) for v in values]
    generator = _median(
        [
            timed(comm, _generator_vjp, problem.prior, v, torch.randn_like(f))[0]
            for v, f in zip(values[1:], fields[1:], strict=True)
        ]
    )
    arrays = [f.to(dtype=torch.float64, device="cpu").numpy() for f in fields]
    y = obs.to(dtype=torch.float64, device="cpu").numpy()
    forward, adjoint = _pde_times(model, arrays, y, std, comm)
    apply, transpose = (0.0, 0.0)
    if not getattr(model, "dense", False):  # the dense map already contains T
        apply, transpose = _transfer_times(model.transfer, arrays, comm)
    parts = {
        "generator_s": generator,
        "transfer_s": apply + transpose,
        "pde_forward_s": forward - apply,
        "pde_adjoint_s": adjoint - transpose,
    }
    raw = (gradient - sum(parts.values())) / gradient
    return parts | {
        "gradient_s": gradient,
        "overhead_fraction": max(raw, 0.0),
        "overhead_fraction_raw": raw,
        "pde_solves_per_gradient": solves,
    }


def _problem_result(config, repeats, comm, dense):
    """Measurements of one study's problem (and, with ``dense``, with the dense map)."""
    torch.manual_seed(config.seed)
    problem, obs, std = build_problem(config, comm)
    model = problem.forward.model
    latents = prior_latents(PotentialEnergy(problem, obs), repeats + 1)
    result = measure(problem, obs, std, latents, comm)
    info = {"ndofs": model.V.dofmap.index_map.size_global, "n_obs": model.n_obs}
    info["latent_dim"] = latents.shape[-1]
    if dense:
        build_s, _ = timed(comm, model.observation_matrix)
        model.dense = True
        dense_result = measure(problem, obs, std, latents, comm) | {"build_s": build_s}
        result |= {f"dense_{key}": value for key, value in dense_result.items()}
    model.destroy()
    return result, info


def run(problem="both", repeats=7, threads=1, config=CONFIG):
    """All measurements as one flat dict (see the module docstring for the keys)."""
    comm = MPI.COMM_WORLD
    source = StudyConfig.from_toml(config)
    source = dataclasses.replace(source, pde=dataclasses.replace(source.pde, dense=False))
    configs = {"source": source, "conductivity": conductivity_config(source)}
    names = list(configs) if problem == "both" else [problem]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = {"ranks": comm.size, "threads": threads, "repeats": repeats}
        out["mesh_n"] = source.mesh.n
        for name in names:
            result, info = _problem_result(configs[name], repeats, comm, name == "source")
            prefix = "" if name == "source" else f"{name}_"
            out |= {f"{prefix}{key}": value for key, value in (info | result).items()}
    finally:
        torch.set_num_threads(previous)
    return out


def main(argv=None):
    """Parse ``argv``, measure, print the JSON line on rank 0 and return the dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=("source", "conductivity", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=7, help="timed draws (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--config", type=Path, default=CONFIG, help="source study TOML")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    result = run(args.problem, args.repeats, args.threads, args.config)
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
