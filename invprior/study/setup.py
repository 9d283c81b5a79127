# SPDX-License-Identifier: MIT
"""What a study builds before inference: generator, forward model, truth, data, problem."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import priors
from ..approximation_error import ApproximationError
from ..bridge import DenseObservationMap, TorchForward
from ..model import DisentangledPrior, InverseProblem
from ..parallel import chain_group
from ..priors.simulate import simulate
from ..validation import InputError
from .config import StudyConfig

__all__ = ["StudySetup", "build_study", "check_study", "load_generator", "synthetic_truth"]


def _forward_model(config: StudyConfig, grid: object, comm: object) -> tuple[object, object]:
    """The PDE on a mesh of the generator's bounding box, and the forward model built on it.

    Returns:
        ``(model, forward)``: the PDE problem and, with ``[pde] dense``, its
        :class:`~invprior.bridge.DenseObservationMap` (built here, ``n_obs`` adjoint
        solves), else the :class:`~invprior.bridge.TorchForward` that solves at every call.
    """
    from ..pde import ConductivityProblem, SourceProblem, grid_sensors, rectangle

    n = config.mesh.n
    mesh = rectangle(comm, grid.bbox, (n, n))
    sensors = grid_sensors(grid.bbox, config.sensors.per_side)
    pde = config.pde
    if pde.kind == "source":
        model = SourceProblem(
            mesh, sensors, grid.shape, grid.bbox, kappa=pde.kappa, solver=pde.solver
        )
    else:
        model = ConductivityProblem(
            mesh, sensors, grid.shape, grid.bbox, source=pde.source, solver=pde.solver
        )
    return model, DenseObservationMap(model) if pde.use_dense else TorchForward(model)


def synthetic_truth(config: StudyConfig, generator: object) -> dict[str, np.ndarray]:
    """The held-out truth: the field and the named variables the generator knows."""
    data = simulate(
        config.truth.simulator, config.truth.index + 1, config.truth.seed, generator.grid
    )
    truth = {"field": np.asarray(data.fields[config.truth.index], dtype=np.float64)}
    for name in generator.aux_names:
        if name in data.factors:
            truth[name] = np.float64(data.factors[name][config.truth.index])
    return truth


def _approximation_error(config: StudyConfig, generator: object, forward: object) -> object | None:
    """The generator's approximation-error moments, or None when the study does not use them."""
    if not config.approximation_error.enabled:
        return None

    cfg = config.approximation_error
    draws = simulate(config.truth.simulator, cfg.num_fields, cfg.seed, generator.grid)
    return ApproximationError.estimate(
        generator, draws.fields, forward, refine_steps=cfg.refine_steps
    )


@dataclass(frozen=True)
class StudySetup:
    """Everything a study builds before inference (:func:`build_study`).

    Attributes:
        model: The PDE forward model (:class:`invprior.pde.SourceProblem` or
            :class:`invprior.pde.ConductivityProblem`) on the study's mesh.
        forward: The forward model on ``model`` as a torch callable
            (:class:`invprior.bridge.TorchForward`, or with ``[pde] dense`` the
            :class:`invprior.bridge.DenseObservationMap`).
        truth: The held-out truth (:func:`synthetic_truth`).
        noise_std: Measurement noise std.
        measured: The inverse problem with measurement noise only.
        approximation_error: The generator's error moments, or None when not enabled.
        problem: The problem inference runs on: ``measured``, or with the enhanced noise
            model when the approximation error is enabled.
        data: The noisy data, shape ``(n_obs,)``, float64 on the CPU.
        obs: ``data`` on the generator's dtype and device.
    """

    model: object
    forward: object
    truth: dict[str, np.ndarray]
    noise_std: float
    measured: object
    approximation_error: object | None
    problem: object
    data: torch.Tensor
    obs: torch.Tensor


def load_generator(config: StudyConfig) -> priors.Generator:
    """The ``[prior]`` generator on its device, with the DL-CFM settings applied.

    ``[prior] flow_steps`` gives a DL-CFM generator that solves its flow in that many
    steps (:meth:`invprior.priors.DLCFMGenerator.with_steps`); the loaded checkpoint
    itself is not modified.

    Args:
        config: The study.

    Returns:
        The loaded, frozen generator (or, with ``flow_steps``, its copy with those steps).

    Raises:
        InputError: ``[prior] name`` is neither a shipped name nor a readable, intact
            checkpoint; ``[prior] device`` names CUDA on a machine without it; DL-CFM
            settings for a generator without a flow; or an approximation error model on top
            of a DL-CFM noise site (the flow's noise already models what the decoder's mean
            misses).
    """
    settings = config.prior
    try:
        device = priors.resolve_device(settings.device)
    except ValueError as err:
        raise InputError(f"[prior] device: {err}") from err
    try:
        generator = priors.load(settings.name, map_location=device)
    except (OSError, ValueError) as err:
        raise InputError(f"[prior] name = {settings.name!r}: {err}") from err
    flow = isinstance(generator, priors.DLCFMGenerator)
    if not flow and (settings.fixed_eps or settings.flow_steps is not None):
        raise InputError(
            f"[prior] fixed_eps and flow_steps apply to DL-CFM generators only, and "
            f"{settings.name!r} is a {type(generator).__name__}; remove them"
        )
    if flow and not settings.fixed_eps and config.approximation_error.enabled:
        raise InputError(
            "[approximation_error] is enabled with the noise site of a DL-CFM prior, which "
            "already models the residual the approximation error stands for; set [prior] "
            "fixed_eps = true or disable [approximation_error]"
        )
    if settings.flow_steps is not None:
        return generator.with_steps(settings.flow_steps)
    return generator


def check_study(config: StudyConfig, comm: object | None = None) -> None:
    """Check what the dataclasses cannot check alone, before any mesh or PDE is built.

    Loads the generator (:func:`load_generator`) and, with ``config.parallel_chains``,
    checks that the ranks of ``comm`` split into one group per chain
    (:func:`invprior.parallel.chain_group`). Cheap next to a study, and it raises the same
    error on every rank, so a command calls it on every rank before :func:`run_study`.

    Args:
        config: The study.
        comm: MPI communicator the study will run on; None skips the rank-group check.

    Raises:
        InputError: See :func:`load_generator`; or the ranks cannot be split into groups.
    """
    if config.parallel_chains and comm is not None:
        try:
            chain_group(comm.rank, comm.size, config.mcmc.num_chains)
        except ValueError as err:
            raise InputError(
                f"[study] parallel_chains = true with num_chains = {config.mcmc.num_chains}: "
                f"{err}; or set parallel_chains = false"
            ) from err
    load_generator(config)


def build_study(config: StudyConfig, comm: object) -> StudySetup:
    """Mesh, forward model, truth, noisy data and the inverse problem of a study.

    Collective on ``comm`` (the mesh's communicator). The generator is loaded first, so a
    bad ``[prior]`` fails before the mesh is built. The noise std is ``[noise] std`` or
    ``relative * max |F(truth)|``; the noise draw is seeded by ``[noise] seed``.

    Args:
        config: The study.
        comm: MPI communicator of the mesh.

    Returns:
        The :class:`StudySetup`.

    Raises:
        InputError: A bad ``[prior]`` (see :func:`load_generator`).
    """
    generator = load_generator(config)
    model, forward = _forward_model(config, generator.grid, comm)
    truth = synthetic_truth(config, generator)
    clean = forward(torch.as_tensor(truth["field"])).numpy()
    std = config.noise.std or config.noise.relative * float(np.abs(clean).max())
    noise = np.random.default_rng(config.noise.seed).standard_normal(clean.shape)
    prior = DisentangledPrior(generator, tau=config.prior.tau, fixed_eps=config.prior.fixed_eps)
    measured = InverseProblem(prior, forward, std)
    approx = _approximation_error(config, generator, forward)
    problem = InverseProblem(prior, forward, approx.likelihood(std)) if approx else measured
    data = torch.as_tensor(clean + std * noise)
    return StudySetup(
        model=model,
        forward=forward,
        truth=truth,
        noise_std=std,
        measured=measured,
        approximation_error=approx,
        problem=problem,
        data=data,
        obs=problem.check_obs(data),
    )
