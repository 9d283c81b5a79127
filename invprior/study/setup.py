# SPDX-License-Identifier: MIT
"""What a study builds before inference: generator, forward model, truth, data, problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyro.distributions as dist
import torch

from .. import priors
from ..approximation_error import ApproximationError
from ..bridge import DenseObservationMap, TorchForward
from ..data import Observations, read_observations
from ..model import DisentangledPrior, InverseProblem
from ..parallel import chain_group
from ..plugin import load_function
from ..priors.arrays import reference_tensor
from ..priors.simulate import simulate
from ..validation import InputError
from .config import StudyConfig

__all__ = [
    "StudySetup",
    "build_study",
    "check_study",
    "load_form",
    "load_generator",
    "study_prior",
    "synthetic_data",
    "synthetic_truth",
]

#: Pyro distribution of each ``[noise] prior``, from its ``scale``.
_NOISE_PRIORS = {"halfnormal": dist.HalfNormal, "halfcauchy": dist.HalfCauchy}


def load_form(config: StudyConfig) -> Callable:
    """The user's residual function named by ``[pde] form`` (``"path.py:name"``).

    Loaded by :func:`invprior.plugin.load_function`; the function is checked when the
    problem is built (:class:`invprior.pde.VariationalProblem`).

    Raises:
        InputError: The file is missing or fails to run, or has no callable ``name``.
    """
    where = f"[pde] form = {config.pde.form!r}"
    return load_function(config.pde.form, where, relative_to="the TOML file")[0]


def _box_tags(mesh: object, bbox: tuple) -> object:
    """Facet tags 1-4 of the left, right, bottom and top sides of the box ``bbox``.

    The tags of ``[pde.dirichlet]`` and friends (:data:`invprior.study.config.SIDES`).
    """
    from ..pde import tag_boundaries

    (x0, y0), (x1, y1) = bbox
    scale = max(x1 - x0, y1 - y0)
    near = {1: (0, x0), 2: (0, x1), 3: (1, y0), 4: (1, y1)}
    return tag_boundaries(
        mesh,
        {
            tag: (lambda x, axis=axis, at=at: np.isclose(x[axis], at, atol=1e-10 * scale))
            for tag, (axis, at) in near.items()
        },
    )


def _boundary_tables(config: StudyConfig) -> dict[str, dict]:
    """The boundary tables of ``[pde]`` that are given, by name."""
    pde = config.pde
    tables = {"dirichlet": pde.dirichlet, "neumann": pde.neumann, "robin": pde.robin}
    return {name: table for name, table in tables.items() if table is not None}


def _mesh(config: StudyConfig, grid: object, comm: object, n: int) -> tuple[object, object]:
    """The study's mesh on ``comm`` and its facet tags (None when nothing uses them).

    Without ``[mesh] file``: the ``n`` x ``n`` mesh of the generator's box, its sides
    tagged (:func:`_box_tags`) when a form is given. With it: the file's mesh and, when a
    boundary table is given, its facet tags.

    Raises:
        InputError: The file is missing or unreadable, has no facet-tag grid of that name,
            tags no facet with a tag a boundary table uses, or reaches outside the
            generator's grid.
    """
    from ..pde import mesh_bbox, read_mesh, rectangle

    file, tables = config.mesh.file, _boundary_tables(config)
    if file is None:
        mesh = rectangle(comm, grid.bbox, (n, n))
        return mesh, _box_tags(mesh, grid.bbox) if config.pde.form is not None else None
    name = config.mesh.facet_tags if tables else None
    try:
        loaded = read_mesh(comm, file, facet_tags_name=name)
    except FileNotFoundError as err:
        raise InputError(
            f"[mesh] file: no file {file}; check the path (relative to the TOML file)"
        ) from err
    except RuntimeError as err:  # dolfinx: a grid of that name is not in the file
        wanted = "a mesh grid named 'mesh'" + (f" and facet tags named {name!r}" if name else "")
        raise InputError(
            f"[mesh] file = {file!r}: cannot read {wanted} ({err}); write the mesh with "
            "dolfinx.io.XDMFFile.write_mesh and its facet tags with write_meshtags, or set "
            "[mesh] facet_tags to the name of the tag grid"
        ) from err
    mesh, tags = loaded.mesh, loaded.facet_tags
    (x0, y0), (x1, y1) = grid.bbox
    (a0, b0), (a1, b1) = box = mesh_bbox(mesh)
    slack = 1e-10 * max(x1 - x0, y1 - y0)
    if a0 < x0 - slack or b0 < y0 - slack or a1 > x1 + slack or b1 > y1 + slack:
        raise InputError(
            f"[mesh] file = {file!r}: the mesh's bounding box {box} reaches outside the "
            f"generator's grid {grid.bbox}, so the prior's fields do not cover the domain; "
            "use a prior trained on a grid that covers the mesh, or move or scale the mesh "
            "into the grid"
        )
    if tags is not None:
        local = np.unique(tags.values)
        known = sorted({int(t) for part in comm.allgather(local) for t in part})
        for table, values in tables.items():
            if missing := sorted(set(values) - set(known)):
                raise InputError(
                    f"[pde] {table}.{missing[0]}: [mesh] file = {file!r} tags no facet "
                    f"{missing}; its facet tags are {known}; use those or retag the mesh"
                )
    return mesh, tags


def _pde_model(
    config: StudyConfig,
    mesh: object,
    facet_tags: object,
    points: np.ndarray | None,
    grid: object,
    residual: Callable | None,
    observations: Observations | None,
) -> object:
    """The PDE forward model of ``config`` on ``mesh``.

    Args:
        config: The study.
        mesh: The study's mesh (:func:`_mesh`).
        facet_tags: Its facet tags, for the boundary tables of a form.
        points: Sensor positions, shape ``(n_obs, 2)``; None means the ``[sensors]`` grid.
        grid: The generator's grid.
        residual: The user's residual (``[pde] form``), or None for a built-in kind.
        observations: The ``[data]`` observations, to name the rows of sensors outside
            the mesh; None without ``[data]``.

    Raises:
        InputError: Sensors outside the mesh, or a residual the problem refuses.
    """
    from ..pde import (
        ConductivityProblem,
        SensorOutsideMeshError,
        SourceProblem,
        VariationalProblem,
        grid_sensors,
    )

    pde = config.pde
    points = grid_sensors(grid.bbox, config.sensors.per_side) if points is None else points
    try:
        if residual is not None:
            given = any(t is not None for t in (pde.dirichlet, pde.neumann, pde.robin))
            dirichlet = list((pde.dirichlet or {}).items()) if given else None
            robin = [(tag, alpha, g) for tag, (alpha, g) in (pde.robin or {}).items()]
            return VariationalProblem(
                mesh, residual, points, grid.shape, grid.bbox,
                dirichlet=dirichlet, neumann=list((pde.neumann or {}).items()), robin=robin,
                facet_tags=facet_tags, solver=pde.solver,
            )  # fmt: skip
        if pde.kind == "source":
            return SourceProblem(
                mesh, points, grid.shape, grid.bbox, kappa=pde.kappa, solver=pde.solver
            )
        return ConductivityProblem(
            mesh, points, grid.shape, grid.bbox, source=pde.source, solver=pde.solver
        )
    except SensorOutsideMeshError as err:
        if observations is None:
            raise
        (x0, y0), (x1, y1) = grid.bbox
        box = f"[{x0:g}, {x1:g}] x [{y0:g}, {y1:g}] (the generator's box)"
        raise InputError(
            f"[data] file: sensors outside the mesh {config.mesh.file or box} at "
            f"{observations.where(err.indices[:10])}; move or remove them"
        ) from err
    except (TypeError, ValueError) as err:
        if residual is None or isinstance(err, InputError):
            raise
        raise InputError(f"[pde] form = {pde.form!r} is not a valid residual: {err}") from err


def _forward_model(
    config: StudyConfig, grid: object, comm: object, observations: Observations | None
) -> tuple[object, object]:
    """The PDE on the study's mesh (:func:`_mesh`), and the forward model built on it.

    Returns:
        ``(model, forward)``: the PDE problem and, with ``[pde] dense``, its
        :class:`~invprior.bridge.DenseObservationMap` (built here, ``n_obs`` adjoint
        solves), else the :class:`~invprior.bridge.TorchForward` that solves at every call.
        With ``[pde] form`` and ``dense`` unset, the dense map is used when the form's
        map is affine.

    Raises:
        InputError: See :func:`_pde_model`, or ``dense = true`` for a form that is not
            affine.
    """
    mesh, tags = _mesh(config, grid, comm, config.mesh.n)
    residual = load_form(config) if config.pde.form is not None else None
    points = observations.points if observations is not None else None
    model = _pde_model(config, mesh, tags, points, grid, residual, observations)
    return model, DenseObservationMap(model) if _dense(config, model) else TorchForward(model)


def _dense(config: StudyConfig, model: object) -> bool:
    """Whether the forward model of ``model`` is its dense observation map.

    Raises:
        InputError: ``[pde] dense = true`` for a form whose map is not affine.
    """
    pde = config.pde
    if pde.form is None:
        return pde.use_dense
    if pde.dense and not model.affine:
        raise InputError(
            f"[pde] dense = true, but the map of form {pde.form!r} is not affine (it is "
            "nonlinear in u, or its operator or its derivative in m depends on m); "
            "remove dense"
        )
    return model.affine if pde.dense is None else pde.dense


def _noise_std(config: StudyConfig, n_obs: int, observations: Observations | None) -> object:
    """The known noise std (a float or one value per observation), or None with a prior.

    With ``[data]``: the file's ``std`` column, ``[noise] std`` or ``[noise] prior``,
    exactly one. Without it, ``[noise] std`` or None (then ``relative``).

    Raises:
        InputError: None or several of those for ``[data]``, or a ``[noise] std`` list
            whose length is not the number of observations.
    """
    noise = config.noise
    if observations is not None:
        given = [
            what
            for what, value in (
                (f"a std column in {observations.path}", observations.std),
                ("[noise] std", noise.std),
                ("[noise] prior", noise.prior),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise InputError(
                f"the noise std of [data] comes from one of a std column of the file, "
                f"[noise] std or [noise] prior; got {' and '.join(given) or 'none of them'}"
            )
        if observations.std is not None:
            return observations.std
    if isinstance(noise.std, tuple):
        if len(noise.std) != n_obs:
            where = (
                f"the {n_obs} observations of {observations.path}"
                if observations
                else (f"the {n_obs} sensors of [sensors] per_side = {config.sensors.per_side}")
            )
            raise InputError(
                f"[noise] std lists {len(noise.std)} values but there are {where}; give one "
                "value per observation, in their order, or a single number"
            )
        return np.asarray(noise.std, dtype=np.float64)
    return noise.std


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


def synthetic_data(
    config: StudyConfig, forward: object, field: np.ndarray, std: object = None
) -> tuple[object, torch.Tensor]:
    """The noise std and the noisy data of a synthetic truth's ``field``.

    The data are ``F(field)`` plus Gaussian noise seeded by ``[noise] seed``, with std
    ``std`` when given (``[noise] std``), else ``[noise] relative`` times ``max |F(field)|``.

    Returns:
        ``(std, data)``, the data of shape ``(n_obs,)`` in float64 on the CPU.
    """
    clean = forward(torch.as_tensor(field)).numpy()
    std = std if std is not None else config.noise.relative * float(np.abs(clean).max())
    noise = np.random.default_rng(config.noise.seed).standard_normal(clean.shape)
    return std, torch.as_tensor(clean + std * noise)


def _approximation_error(config: StudyConfig, generator: object, forward: object) -> object | None:
    """The generator's approximation-error moments, or None when the study does not use them."""
    if not config.approximation_error.enabled:
        return None

    cfg = config.approximation_error
    draws = simulate(config.approximation_simulator, cfg.num_fields, cfg.seed, generator.grid)
    return ApproximationError.estimate(
        generator, draws.fields, forward, refine_steps=cfg.refine_steps
    )


@dataclass(frozen=True)
class StudySetup:
    """Everything a study builds before inference (:func:`build_study`).

    Attributes:
        model: The PDE forward model (:class:`invprior.pde.SourceProblem`,
            :class:`invprior.pde.ConductivityProblem` or, with ``[pde] form``,
            :class:`invprior.pde.VariationalProblem`) on the study's mesh.
        forward: The forward model on ``model`` as a torch callable
            (:class:`invprior.bridge.TorchForward`, or with ``[pde] dense`` the
            :class:`invprior.bridge.DenseObservationMap`).
        truth: The held-out truth (:func:`synthetic_truth`), or None for measured data.
        noise_std: The known measurement noise std, a float or one value per observation
            (shape ``(n_obs,)``); with ``[noise] prior`` and a synthetic truth, the std the
            data were drawn with; None with ``[noise] prior`` and measured data.
        measured: The inverse problem with measurement noise only (its noise std a site
            with ``[noise] prior``).
        approximation_error: The generator's error moments, or None when not enabled.
        problem: The problem inference runs on: ``measured``, or with the enhanced noise
            model when the approximation error is enabled.
        data: The data, shape ``(n_obs,)``, float64 on the CPU: noisy synthetic data, or
            the ``[data]`` file's values.
        obs: ``data`` on the generator's dtype and device.
        linear: Whether the forward map is affine in the field (labels the baseline).
    """

    model: object
    forward: object
    truth: dict[str, np.ndarray] | None
    noise_std: float | np.ndarray | None
    measured: object
    approximation_error: object | None
    problem: object
    data: torch.Tensor
    obs: torch.Tensor
    linear: bool


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


def study_prior(config: StudyConfig, generator: priors.Generator) -> DisentangledPrior:
    """The ``[prior]`` generator as the study's Pyro prior, with its ``tau`` and ``fixed_eps``."""
    return DisentangledPrior(generator, tau=config.prior.tau, fixed_eps=config.prior.fixed_eps)


def _probe(config: StudyConfig, grid: object, observations: Observations | None) -> None:
    """Build the study's PDE on a 2 x 2 mesh of the box, or the ``[mesh] file``, on this rank.

    The cheap way to check, before the real mesh, that every sensor lies inside the
    domain, that a mesh file is readable, inside the grid and has the tags the boundary
    tables use, and that a user's form gives a valid problem with its boundary data (the
    form's compiled kernels are cached for the real mesh).
    """
    from mpi4py import MPI

    mesh, tags = _mesh(config, grid, MPI.COMM_SELF, 2)
    residual = load_form(config) if config.pde.form is not None else None
    points = observations.points if observations is not None else None
    model = _pde_model(config, mesh, tags, points, grid, residual, observations)
    _dense(config, model)
    model.destroy()


def check_study(config: StudyConfig, comm: object | None = None) -> None:
    """Check what the dataclasses cannot check alone, before any mesh or PDE is built.

    Loads the generator (:func:`load_generator`) and, with ``config.study.parallel_chains``,
    checks that the ranks of ``comm`` split into one group per chain
    (:func:`invprior.parallel.chain_group`). With ``[data]``, reads the observation file
    (:func:`invprior.data.read_observations`) and checks where the noise std comes from;
    checks a ``[noise] std`` list against the number of observations; with ``[data]`` or
    ``[pde] form`` or ``[mesh] file``, builds the PDE on a 2 x 2 mesh of the generator's
    box (or the file's mesh) on this rank alone, so sensors outside the domain, a bad mesh
    file and a form that is not a valid residual are named here. Cheap next to a study, and
    it raises the same error on every rank, so a command calls it on every rank before
    :func:`run_study`.

    Args:
        config: The study.
        comm: MPI communicator the study will run on; None skips the rank-group check.

    Raises:
        InputError: See :func:`load_generator`, :func:`load_form` and
            :func:`invprior.data.read_observations`; the ranks cannot be split into
            groups; the noise std is given in none or several places for ``[data]``, or
            as a list of the wrong length; a sensor lies outside the mesh; the form is not
            a valid residual with its boundary data.
    """
    if config.study.parallel_chains and comm is not None:
        try:
            chain_group(comm.rank, comm.size, config.mcmc.num_chains)
        except ValueError as err:
            raise InputError(
                f"[study] parallel_chains = true with num_chains = {config.mcmc.num_chains}: "
                f"{err}; or set parallel_chains = false"
            ) from err
    generator = load_generator(config)
    observations = read_observations(config.data.file) if config.data is not None else None
    n_obs = observations.n_obs if observations is not None else config.sensors.per_side**2
    _noise_std(config, n_obs, observations)
    if observations is not None or config.pde.form is not None or config.mesh.file is not None:
        _probe(config, generator.grid, observations)


def build_study(config: StudyConfig, comm: object) -> StudySetup:
    """Mesh, forward model, truth or measured data, and the inverse problem of a study.

    Collective on ``comm`` (the mesh's communicator). The generator is loaded first, so a
    bad ``[prior]`` fails before the mesh is built. With ``[truth]``, the noise std is
    ``[noise] std`` or ``relative * max |F(truth)|`` and the noise draw is seeded by
    ``[noise] seed``. With ``[data]``, the data and sensors are the file's and the noise
    std its ``std`` column or ``[noise] std``. With ``[noise] prior`` the problem's noise
    std is a site with that prior (``HalfNormal(scale)`` or ``HalfCauchy(scale)``).

    Args:
        config: The study.
        comm: MPI communicator of the mesh.

    Returns:
        The :class:`StudySetup`.

    Raises:
        InputError: See :func:`check_study`.
    """
    generator = load_generator(config)
    observations = read_observations(config.data.file) if config.data is not None else None
    model, forward = _forward_model(config, generator.grid, comm, observations)
    std = _noise_std(config, model.n_obs, observations)
    if observations is None:
        truth = synthetic_truth(config, generator)
        std, data = synthetic_data(config, forward, truth["field"], std)
    else:
        truth, data = None, torch.as_tensor(observations.values)
    prior = study_prior(config, generator)
    if config.noise.prior is not None:
        scale = reference_tensor(generator).new_tensor(config.noise.scale)
        measured = InverseProblem(prior, forward, _NOISE_PRIORS[config.noise.prior](scale))
    else:
        measured = InverseProblem(prior, forward, std)
    approx = _approximation_error(config, generator, forward)
    problem = InverseProblem(prior, forward, approx.likelihood(std)) if approx else measured
    linear = model.affine if config.pde.form is not None else config.pde.kind == "source"
    return StudySetup(
        model=model,
        forward=forward,
        truth=truth,
        noise_std=std if observations is None or config.noise.prior is None else None,
        measured=measured,
        approximation_error=approx,
        problem=problem,
        data=data,
        obs=problem.check_obs(data),
        linear=linear,
    )
