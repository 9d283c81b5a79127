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
also compiles the forms) one gradient is run, and the time it spends in each part is
taken inside it (:class:`InPlaceTimers`), so the parts are timed in the context they run
in (caches, machine load) and add up to the gradient; each number is the median over the
draws of the slowest rank's time:

- ``gradient_s``: value and gradient of :class:`invprior.potential.PotentialEnergy`
  (``torch.autograd.grad`` on the flat unconstrained latent), the unit NUTS pays per
  leapfrog step;
- ``generator_s``: the generator's ``decode`` and its part of the backward pass;
- ``transfer_s``: the grid-to-mesh transfer :math:`T` of the field plus :math:`T^T` of the
  mesh cotangent (``model.transfer``);
- ``pde_forward_s``, ``pde_adjoint_s``: ``model.forward`` and ``model.vjp`` (float64, as
  the bridge calls them), each less the transfer it applies; with the dense map, the
  product with it and the product with its transpose in the backward pass.

``overhead_fraction`` is the median over the draws of ``(gradient_s - generator_s -
transfer_s - pde_forward_s - pde_adjoint_s) / gradient_s``, clipped at 0
(``overhead_fraction_raw`` unclipped, ``overhead_fraction_iqr`` its interquartile range): the
share of the framework (bijections, prior and likelihood densities, the torch bridge's
copies, autograd). The target is at most 0.25 on a CPU. The source problem is also
timed with the dense observation map (``dense_*`` keys; the same problem with the forward
model ``invprior.bridge.DenseObservationMap`` built beside the solving one,
``dense_build_s``): the torch forward applies the ``n_obs x (ny nx)`` matrix, which
contains :math:`T`, so ``dense_transfer_s`` is 0 and no solve runs. Keys of the conductivity
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

from invprior.bridge import DenseObservationMap
from invprior.model import InverseProblem
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


class InPlaceTimers:
    """Wall-clock seconds spent inside each part during the gradients run in its ``with``.

    Wraps, on the instances only and until the block ends, the generator's ``decode`` and
    either ``model.forward``, ``model.vjp`` and the transfer's ``apply`` and
    ``apply_transpose`` (subtracted from the PDE part they run in) or, with a
    :class:`DenseObservationMap`, its affine map. The backward of an operation that
    autograd runs (the decoder's; the affine map's) is timed from the hook on its output's
    gradient, called just before that backward starts, to the hooks on its inputs'
    gradients, called when it ends.
    """

    def __init__(self, generator, forward):
        self.seconds = dict.fromkeys(
            ("generator", "forward", "adjoint", "apply", "transpose"), 0.0
        )
        self._started = {}
        model = forward.model
        self._patches = [(generator, "decode", "generator", "generator")]
        if isinstance(forward, DenseObservationMap):
            self._patches += [(forward, "_observe", "forward", "adjoint")]
        else:
            self._patches += [
                (model, "forward", "forward", None),
                (model, "vjp", "adjoint", None),
                (model.transfer, "apply", "apply", None),
                (model.transfer, "apply_transpose", "transpose", None),
            ]

    def _timed(self, fn, key, backward_key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self.seconds[key] += time.perf_counter() - start
            if backward_key is not None and out.requires_grad:
                inputs = [a for a in args if torch.is_tensor(a) and a.requires_grad]
                self._hook_backward(backward_key, out, inputs)
            return out

        return wrapper

    def _hook_backward(self, key, output, inputs):
        def start(grad):
            self._started[key] = time.perf_counter()

        def end(grad):  # consecutive intervals: the last input's hook closes the backward
            now = time.perf_counter()
            self.seconds[key] += now - self._started[key]
            self._started[key] = now

        output.register_hook(start)
        for tensor in inputs:
            tensor.register_hook(end)

    def __enter__(self):
        for obj, name, key, backward_key in self._patches:
            setattr(obj, name, self._timed(getattr(obj, name), key, backward_key))
        return self

    def __exit__(self, *exc):
        for obj, name, *_ in self._patches:
            delattr(obj, name)

    def parts(self):
        """The four timed parts, in seconds (see the module docstring)."""
        t = self.seconds
        return {
            "generator_s": t["generator"],
            "transfer_s": t["apply"] + t["transpose"],
            "pde_forward_s": t["forward"] - t["apply"],
            "pde_adjoint_s": t["adjoint"] - t["transpose"],
        }


def _parts_at(potential, latent, comm):
    """One gradient at ``latent`` and its parts, each the slowest rank's seconds."""
    problem = potential.problem
    model = problem.forward.model
    solves = model.counter.total
    with InPlaceTimers(problem.prior.generator, problem.forward) as timers:
        gradient, _ = timed(comm, _gradient, potential, latent)
    parts = {key: comm.allreduce(value, op=MPI.MAX) for key, value in timers.parts().items()}
    solves = model.counter.total - solves
    return parts | {"gradient_s": gradient, "pde_solves_per_gradient": solves}


def measure(problem, obs, latents, comm):
    """The parts of one gradient at the latents ``(1 + repeats, dim)``; see the docstring."""
    potential = PotentialEnergy(problem, obs)
    _parts_at(potential, latents[0], comm)  # warm-up: compiles the forms
    draws = [_parts_at(potential, latent, comm) for latent in latents[1:]]
    result = {key: _median([d[key] for d in draws]) for key in draws[0]}
    raw = [(d["gradient_s"] - sum(d[k] for k in PARTS)) / d["gradient_s"] for d in draws]
    quartiles = np.percentile(raw, [25, 75])
    return result | {
        "overhead_fraction": max(_median(raw), 0.0),
        "overhead_fraction_raw": _median(raw),
        "overhead_fraction_iqr": float(quartiles[1] - quartiles[0]),
    }


def _problem_result(config, repeats, comm, dense):
    """Measurements of one study's problem (and, with ``dense``, with the dense map)."""
    torch.manual_seed(config.study.seed)
    problem, obs, _ = build_problem(config, comm)
    model = problem.forward.model
    latents = PotentialEnergy(problem, obs).prior_latents(repeats + 1)
    result = measure(problem, obs, latents, comm)
    info = {"ndofs": model.V.dofmap.index_map.size_global, "n_obs": model.n_obs}
    info["latent_dim"] = latents.shape[-1]
    if dense:
        build_s, forward = timed(comm, DenseObservationMap, model)
        dense_problem = InverseProblem(problem.prior, forward, problem.likelihood)
        dense_result = measure(dense_problem, obs, latents, comm) | {"build_s": build_s}
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
