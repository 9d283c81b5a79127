# SPDX-License-Identifier: MIT
r"""Posterior draws as ArviZ DataTrees: one layout whatever produced them, and saving it.

ArviZ [1] >= 1 has no Pyro converter, so the DataTree is built with
``arviz_base.from_dict``, in one layout whatever produced the draws (sample dimensions
``("chain", "draw")``):

- :func:`to_arviz`: our :class:`~invprior.infer.MCMCResult` or
  :class:`~invprior.infer.LaplaceResult` of an :class:`~invprior.model.InverseProblem`;
- :func:`from_pyro_mcmc`: a ``pyro.infer.MCMC`` object, its per-draw sampler statistics
  recorded by a :class:`PyroSampleStats` whose kernel it ran, passed as its ``hook_fn``;
- :func:`from_svi`: independent draws from an SVI guide.

Groups: ``posterior`` (latent and deterministic sites), ``sample_stats`` (``diverging``,
``energy``, ``lp``, integer ``n_steps`` and ``tree_depth``, ``step_size``,
``acceptance_rate``), ``log_likelihood`` (one value per observation: the observed
site's factors, or for a multivariate normal the conditional densities
:math:`\log p(y_i \mid y_{-i}, \theta)` [2]), ``posterior_predictive``, ``prior`` and
``prior_predictive`` (draws of the model with its data left out), ``observed_data`` and
``constant_data``. With an inverse problem the dimensions are named (``sensor``, ``aux``,
``rec``, ``y``/``x`` with the grid's node coordinates, ``xy``). ``lp`` is
:math:`-U(\zeta)`, the log joint density on the unconstrained space (Jacobian included)
that the sampler moved in; draws that are independent (SVI, Laplace) have no
trajectory, so their ``energy`` is :math:`-lp`, ``n_steps`` and ``tree_depth`` are 0,
``step_size`` is NaN and ``acceptance_rate`` 1 (E-BFMI near 2 says nothing there).

The MCMC converters hold their draws against ArviZ's recommendations
(:func:`invprior.diagnostics.sampling_checks`) and issue a
:class:`~invprior.diagnostics.SamplingWarning` per failed check unless told not to.
:func:`save_datatree` writes a DataTree to NetCDF atomically.

References:
    [1] R. Kumar, C. Carroll, A. Hartikainen, O. Martin, "ArviZ a unified library for
        exploratory analysis of Bayesian models in Python", JOSS 4 (2019),
        https://doi.org/10.21105/joss.01143
    [2] P.-C. Buerkner, J. Gabry, A. Vehtari, "Efficient leave-one-out cross-validation for
        Bayesian non-factorized normal and Student-t models", Comput. Stat. 36 (2021),
        https://arxiv.org/abs/1810.10559
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import arviz_base
import numpy as np
import pyro
import torch
import xarray as xr
from pyro import poutine
from pyro.infer.mcmc import HMC, NUTS

from .diagnostics import sampling_checks, warn_sampling
from .fileio import atomic_path, json_text
from .infer.common import is_root, seeded
from .infer.laplace_approximation import LaplaceResult
from .infer.mcmc import MCMCResult
from .infer.pyro_shim import DrawRecorder, StartEnergy, call_args, recording_copy
from .model import InverseProblem
from .model_trace import ModelGroups, TracedModel, independent_stats, latent_names, model_groups
from .priors.arrays import to_numpy
from .sites import AUX_NOISE, FIELD, OBS, Z_AUX, Z_REC

__all__ = [
    "PyroSampleStats",
    "from_pyro_mcmc",
    "from_svi",
    "save_datatree",
    "to_arviz",
]

NUM_PRIOR_DRAWS = 100
"""Default number of draws in the ``prior`` and ``prior_predictive`` groups."""

_STAT_NAMES = {"accept_prob": "acceptance_rate"}
"""Our per-draw statistic names that differ from ArviZ's conventions."""


def _grid_coords(problem: InverseProblem) -> dict[str, np.ndarray]:
    grid = problem.prior.generator.grid
    (x0, y0), (x1, y1) = grid.bbox
    return {"y": np.linspace(y0, y1, grid.shape[0]), "x": np.linspace(x0, x1, grid.shape[1])}


# --- the DataTree ------------------------------------------------------------------------


def _problem_layout(
    problem: InverseProblem,
    sensor_coords: np.ndarray | None,
    truth: Mapping[str, torch.Tensor | np.ndarray | float] | None,
) -> tuple[dict, dict, dict, dict]:
    """``(dims, coords, constant_data, attrs)`` of an inverse problem's DataTree."""
    prior = problem.prior
    names = list(prior.aux_names)
    constant = {"tau": np.array(prior.tau)}
    if problem.likelihood is not None:  # else noise_std is a site of the posterior
        constant = {"noise_std": to_numpy(problem.likelihood.noise_std), **constant}
    dims = {AUX_NOISE: ["aux"], Z_AUX: ["aux"], Z_REC: ["rec"], FIELD: ["y", "x"], OBS: ["sensor"]}
    for name, value in (truth or {}).items():
        constant[f"true_{name}"] = to_numpy(value)
        dims[f"true_{name}"] = dims.get(name, [])
    if constant.get("noise_std", np.zeros(())).size > 1:
        dims["noise_std"] = ["sensor"]
    if sensor_coords is not None:
        sensor_coords = np.asarray(sensor_coords, dtype=float)
        if sensor_coords.shape != (problem.n_obs, 2):
            raise ValueError(
                f"sensor_coords has shape {sensor_coords.shape}; expected ({problem.n_obs}, 2)"
            )
        constant["sensor_coords"] = sensor_coords
        dims["sensor_coords"] = ["sensor", "xy"]
    coords = {**_grid_coords(problem), "xy": ["x", "y"], **({"aux": names} if names else {})}
    if sensor_coords is not None:
        coords["sensor_x"] = ("sensor", sensor_coords[:, 0])
        coords["sensor_y"] = ("sensor", sensor_coords[:, 1])
    attrs = {
        "aux_names": json.dumps(names),
        "aux_units": json.dumps(list(prior.generator.aux_units)),
    }
    return dims, coords, constant, attrs


def _datatree(
    groups: ModelGroups,
    stats: Mapping[str, np.ndarray],
    *,
    include: set[str] | None,
    dims: Mapping[str, list[str]],
    coords: Mapping[str, object],
    constant: Mapping[str, np.ndarray],
    attrs: Mapping[str, object],
) -> xr.DataTree:
    """The DataTree of ``groups``; posterior and prior variables limited to ``include``."""

    def keep(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {n: v for n, v in group.items() if include is None or n in include}

    data = {
        "posterior": keep(groups.posterior),
        "sample_stats": {_STAT_NAMES.get(k, k): np.asarray(v) for k, v in stats.items()},
        "log_likelihood": groups.log_likelihood,
        "posterior_predictive": groups.posterior_predictive,
        "prior": keep(groups.prior),
        "prior_predictive": groups.prior_predictive,
        "observed_data": groups.observed_data,
        "constant_data": dict(constant),
    }
    data = {k: v for k, v in data.items() if v}
    plain = {k: v for k, v in coords.items() if not isinstance(v, tuple)}
    tree = arviz_base.from_dict(data, dims=dict(dims), coords=plain, attrs={"/": dict(attrs)})
    for name, (dim, values) in ((k, v) for k, v in coords.items() if isinstance(v, tuple)):
        for group in tree.children.values():
            if dim in group.dims:
                group.coords[name] = (dim, values)
    return tree


def _include(problem: InverseProblem, include_field: bool) -> set[str]:
    names = {*problem.prior.aux_names, *problem.latent_shapes, Z_AUX}
    return names | {FIELD} if include_field else names


def to_arviz(
    result: MCMCResult | LaplaceResult,
    problem: InverseProblem,
    obs: torch.Tensor | np.ndarray,
    *,
    sensor_coords: np.ndarray | None = None,
    include_field: bool = False,
    posterior_predictive: bool = True,
    num_prior_draws: int = NUM_PRIOR_DRAWS,
    num_draws: int = 1000,
    truth: Mapping[str, torch.Tensor | np.ndarray | float] | None = None,
    seed: int = 0,
    warn: bool = True,
) -> xr.DataTree:
    """An ArviZ DataTree of an MCMC or Laplace result of an inverse problem.

    Groups as in the module docstring. ``posterior`` holds the named sites in physical
    units, ``e_aux``, ``z_aux``, ``z_rec`` (``eps`` for a flow prior) and optionally
    ``field`` on ``(y, x)`` node coordinates; ``sample_stats`` the sampler's per-draw
    statistics (an MCMC result) or those of independent draws (a Laplace result, one
    chain of ``num_draws``); ``constant_data`` ``noise_std``, ``tau`` and, if given,
    ``sensor_coords`` (also the ``sensor_x``/``sensor_y`` coordinates of ``sensor``).
    Root attributes record the kernel, the named variables and their units, and for MCMC
    per-chain PDE solves and wall times (JSON). One forward solve per posterior draw (the
    log likelihood and the replicated data) and per prior draw.

    Args:
        result: The MCMC or Laplace result.
        problem: The inverse problem it approximates.
        obs: Observed data, shape ``(n_obs,)``.
        sensor_coords: Sensor positions, shape ``(n_obs, 2)``.
        include_field: Store the field draws (``chain * draw * ny * nx`` values, and as
            many per prior draw).
        posterior_predictive: Add replicated data.
        num_prior_draws: Draws in ``prior`` and ``prior_predictive``; 0 leaves them out.
        num_draws: Draws of a Laplace result.
        truth: Known true values for synthetic studies, ``{site: value}`` (named variables,
            ``field`` of shape ``(ny, nx)``); stored in ``constant_data`` as ``true_<site>``.
        seed: Seed of the replicated noise, the prior draws and the Laplace draws.
        warn: For an MCMC result, issue a :class:`~invprior.diagnostics.SamplingWarning`
            per failed check of :func:`~invprior.diagnostics.sampling_checks` (on MPI
            rank 0 only).

    Returns:
        The DataTree.

    Raises:
        ValueError: If ``sensor_coords`` does not have shape ``(n_obs, 2)`` or ``obs`` is
            not finite data of shape ``(n_obs,)``.
        TypeError: If ``result`` is neither an MCMC nor a Laplace result.
    """
    obs = problem.check_obs(obs)
    if isinstance(result, MCMCResult):
        draws = {n: result.samples[n] for n in problem.latent_shapes}
        transforms = None
    elif isinstance(result, LaplaceResult):
        sites = result.sample(num_draws, seed=seed)
        draws = {n: sites[n][None] for n in problem.latent_shapes}
        transforms = result.potential.transforms
    else:
        raise TypeError(
            f"result must be an MCMCResult or a LaplaceResult, got {type(result).__name__}; "
            f"convert a pyro.infer.MCMC with from_pyro_mcmc and an SVI guide with from_svi"
        )
    model = TracedModel(problem.model, (obs,), {}, 0, {}, dict(transforms or {}))
    groups = model_groups(
        model,
        draws,
        posterior_predictive=posterior_predictive,
        num_prior_draws=num_prior_draws,
        seed=seed,
        device=obs.device,
    )
    dims, coords, constant, attrs = _problem_layout(problem, sensor_coords, truth)
    if isinstance(result, MCMCResult):
        stats = dict(result.sample_stats)
        attrs |= {
            "kernel": result.kernel,
            "chain_stats": json_text(result.chain_stats),  # strict: a NaN step size is null
            "num_divergences": result.num_divergences,
        }
    else:
        stats = independent_stats(groups.lp)
        attrs |= {
            "kernel": "Laplace",
            "chain_stats": json_text([{"chain": 0, "pde_solves": result.pde_solves}]),
            "num_divergences": 0,
        }
    attrs["deterministic"] = json.dumps([Z_AUX, FIELD])
    tree = _datatree(
        groups,
        stats,
        include=_include(problem, include_field),
        dims=dims,
        coords=coords,
        constant=constant,
        attrs=attrs,
    )
    if warn and isinstance(result, MCMCResult) and is_root():
        warn_sampling(sampling_checks(tree), stacklevel=3)
    return tree


class PyroSampleStats:
    """Per-draw sampler statistics of a ``pyro.infer.MCMC`` run, passed as its ``hook_fn``.

    Records what :func:`invprior.infer.nuts` records (``step_size``, ``n_steps``,
    ``accept_prob``, ``energy``, ``lp`` and, for NUTS, ``tree_depth``) for every chain that
    runs in this process (Pyro's default for chains on one CPU, or ``num_chains=1``). The
    run must use :attr:`kernel`, a copy of the given kernel that also keeps the Hamiltonian
    after each momentum refresh (:func:`~invprior.infer.pyro_shim.recording_copy`; it
    draws what the given kernel would, and the given kernel is left as it is). On the first
    call of a chain the copy's potential is wrapped to count leapfrog steps. The
    statistics of a chain start after its first warm-up iteration, so give at least one
    warm-up step.

    Args:
        kernel: A ``pyro.infer.NUTS`` or ``pyro.infer.HMC`` kernel, not run yet.
        num_samples: Draws per chain, as given to ``MCMC``.

    Attributes:
        kernel: The kernel to give ``MCMC``.

    Raises:
        TypeError: If ``kernel`` is not a NUTS or HMC kernel.

    Example:
        >>> stats = PyroSampleStats(NUTS(model), num_samples=500)  # doctest: +SKIP
        >>> mcmc = MCMC(stats.kernel, 500, warmup_steps=500, hook_fn=stats)  # doctest: +SKIP
        >>> tree = from_pyro_mcmc(mcmc, stats=stats)  # doctest: +SKIP
    """

    def __init__(self, kernel: HMC, num_samples: int) -> None:
        self.kernel = recording_copy(kernel)
        self.num_samples = int(num_samples)
        self._recorders: dict[int, DrawRecorder] = {}

    def __call__(self, kernel: object, params: dict, stage: str, i: int) -> None:
        """Record iteration ``i`` of ``stage`` (``"Warmup [c]"`` or ``"Sample [c]"``).

        Raises:
            TypeError: If the run does not use :attr:`kernel`.
        """
        if not isinstance(kernel, StartEnergy):
            raise TypeError(
                f"PyroSampleStats records runs of its own kernel, got a {type(kernel).__name__}; "
                "pass stats.kernel to MCMC: MCMC(stats.kernel, ..., hook_fn=stats)"
            )
        chain = int(stage.partition("[")[2].rstrip("]") or 0)
        if chain not in self._recorders:
            counter = _CountedPotential(kernel.potential_fn)
            kernel.potential_fn = counter
            nuts = isinstance(kernel, NUTS)
            self._recorders[chain] = DrawRecorder(counter, self.num_samples, nuts)
        self._recorders[chain](kernel, params, stage, i)

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """The statistics so far, ``{name: (chain, draw)}``."""
        chains = [self._recorders[c].stats for c in sorted(self._recorders)]
        return {key: np.stack([s[key] for s in chains]) for key in chains[0]}


class _CountedPotential:
    """A potential function that counts its evaluations (``num_evals``)."""

    def __init__(self, fn: Callable[[dict], torch.Tensor]) -> None:
        self.fn, self.num_evals = fn, 0

    def __call__(self, params: dict) -> torch.Tensor:
        self.num_evals += 1
        return self.fn(params)


def _generic_layout(
    problem: InverseProblem | None,
    sensor_coords: np.ndarray | None,
    dims: Mapping[str, list[str]] | None,
    coords: Mapping[str, object] | None,
) -> tuple[dict, dict, dict, dict]:
    if problem is None:
        return dict(dims or {}), dict(coords or {}), {}, {"aux_names": json.dumps([])}
    p_dims, p_coords, constant, attrs = _problem_layout(problem, sensor_coords, None)
    return {**p_dims, **(dims or {})}, {**p_coords, **(coords or {})}, constant, attrs


def from_pyro_mcmc(
    mcmc: pyro.infer.MCMC,
    *,
    stats: PyroSampleStats | None = None,
    problem: InverseProblem | None = None,
    sensor_coords: np.ndarray | None = None,
    dims: Mapping[str, list[str]] | None = None,
    coords: Mapping[str, object] | None = None,
    posterior_predictive: bool = True,
    num_prior_draws: int = NUM_PRIOR_DRAWS,
    seed: int = 0,
    warn: bool = True,
) -> xr.DataTree:
    """An ArviZ DataTree of a ``pyro.infer.MCMC`` run (ArviZ >= 1 has no ``from_pyro``).

    The model and its arguments are the ones the run was given (``mcmc.run(*args)``);
    its observed sites make ``observed_data``, ``log_likelihood`` and the predictive
    groups. ``diverging`` comes from the kernel's diagnostics, the other sampler
    statistics from ``stats``; without it ``lp`` is recomputed with ``biject_to``
    transforms (Pyro's default) and there is no ``energy``.

    Args:
        mcmc: The run, with a kernel built from a model (``NUTS(model)``, ``HMC(model)``).
        stats: The :class:`PyroSampleStats` whose ``kernel`` the run used, passed as its
            ``hook_fn``.
        problem: The inverse problem whose ``model`` was sampled, for its named dimensions,
            coordinates and ``constant_data``.
        sensor_coords: Sensor positions, shape ``(n_obs, 2)`` (with ``problem``).
        dims: Dimension names per variable, ``{site: [dim, ...]}`` (event dimensions).
        coords: Coordinate values per dimension.
        posterior_predictive: Add replicated data.
        num_prior_draws: Draws in ``prior`` and ``prior_predictive``; 0 leaves them out.
        seed: Seed of the replicated data and the prior draws.
        warn: Issue a :class:`~invprior.diagnostics.SamplingWarning` per failed check (MPI
            rank 0 only).

    Returns:
        The DataTree.

    Raises:
        ValueError: If the kernel has no model or the run kept no draws.
    """
    kernel = mcmc.kernel
    if kernel.model is None:
        raise ValueError(
            "the MCMC kernel was built from a potential_fn; build it from a model "
            "(NUTS(model)), or convert an invprior.infer result with to_arviz"
        )
    samples = mcmc.get_samples(group_by_chain=True)
    if not samples:
        raise ValueError("the MCMC run kept no draws; call mcmc.run(...) first")
    first = {n: v[0, 0] for n, v in samples.items()}
    args, kwargs = call_args(mcmc)
    model = TracedModel.of(kernel.model, args, kwargs, first, kernel.transforms)
    num_chains, num = next(iter(samples.values())).shape[:2]
    diverging = np.zeros((num_chains, num), dtype=bool)
    for chain, indices in enumerate(mcmc.diagnostics()["divergences"].values()):
        diverging[chain, np.asarray(indices, dtype=int)] = True

    def sample_stats(groups: ModelGroups) -> dict[str, np.ndarray]:
        recorded = stats.stats if stats is not None else {"lp": groups.lp}
        return {**recorded, "diverging": diverging}

    tree = _tree_of_draws(
        model, samples, sample_stats, type(kernel).__name__, int(diverging.sum()),
        layout=(problem, sensor_coords, dims, coords),
        posterior_predictive=posterior_predictive, num_prior_draws=num_prior_draws, seed=seed,
    )  # fmt: skip
    if warn and is_root():
        warn_sampling(sampling_checks(tree), stacklevel=2)
    return tree


def from_svi(
    guide: Callable[..., object],
    model: Callable[..., object],
    *args: object,
    model_kwargs: Mapping[str, object] | None = None,
    num_draws: int = 1000,
    problem: InverseProblem | None = None,
    sensor_coords: np.ndarray | None = None,
    dims: Mapping[str, list[str]] | None = None,
    coords: Mapping[str, object] | None = None,
    posterior_predictive: bool = True,
    num_prior_draws: int = NUM_PRIOR_DRAWS,
    seed: int = 0,
) -> xr.DataTree:
    """An ArviZ DataTree of independent draws from a fitted SVI guide (one chain).

    Args:
        guide: The fitted guide (an autoguide or any guide over the model's latent sites).
        model: The model it approximates.
        *args: The model's (and guide's) arguments, the data included.
        model_kwargs: Their keyword arguments.
        num_draws: Draws from the guide.
        problem: The inverse problem whose ``model`` this is, for its named dimensions,
            coordinates and ``constant_data``.
        sensor_coords: Sensor positions, shape ``(n_obs, 2)`` (with ``problem``).
        dims: Dimension names per variable, ``{site: [dim, ...]}`` (event dimensions).
        coords: Coordinate values per dimension.
        posterior_predictive: Add replicated data.
        num_prior_draws: Draws in ``prior`` and ``prior_predictive``; 0 leaves them out.
        seed: Seed of the guide draws (``seed + 2``), the replicated data and the prior.

    Returns:
        The DataTree; ``sample_stats`` as for independent draws (module docstring).
    """
    kwargs = dict(model_kwargs or {})
    with seeded(seed + 2, torch.device("cpu")), poutine.block(), torch.no_grad():
        traces = [poutine.trace(guide).get_trace(*args, **kwargs) for _ in range(num_draws)]
    names = latent_names(traces[0])
    draws = {n: torch.stack([t.nodes[n]["value"] for t in traces])[None] for n in names}
    model_ = TracedModel.of(model, args, kwargs, {n: v[0, 0] for n, v in draws.items()})
    return _tree_of_draws(
        model_, draws, lambda groups: independent_stats(groups.lp), "SVI", 0,
        layout=(problem, sensor_coords, dims, coords),
        posterior_predictive=posterior_predictive, num_prior_draws=num_prior_draws, seed=seed,
    )  # fmt: skip


def _tree_of_draws(
    model: TracedModel,
    draws: dict[str, torch.Tensor],
    sample_stats: Callable[[ModelGroups], dict[str, np.ndarray]],
    kernel: str,
    num_divergences: int,
    *,
    layout: tuple,
    posterior_predictive: bool,
    num_prior_draws: int,
    seed: int,
) -> xr.DataTree:
    """The DataTree of draws ``(chain, draw, ...)`` per latent site of a general model.

    ``sample_stats`` builds the sampler statistics from the model's groups (for ``lp``);
    ``layout`` is ``(problem, sensor_coords, dims, coords)`` of :func:`_generic_layout`.
    """
    device = next(iter(draws.values())).device
    groups = model_groups(
        model,
        draws,
        posterior_predictive=posterior_predictive,
        num_prior_draws=num_prior_draws,
        seed=seed,
        device=device,
    )
    dims_, coords_, constant, attrs = _generic_layout(*layout)
    attrs |= {
        "kernel": kernel,
        "num_divergences": num_divergences,
        "deterministic": json.dumps([n for n in groups.posterior if n not in draws]),
    }
    return _datatree(
        groups,
        sample_stats(groups),
        include=None,
        dims=dims_,
        coords=coords_,
        constant=constant,
        attrs=attrs,
    )


def save_datatree(tree: xr.DataTree, path: str | os.PathLike) -> Path:
    """Write a DataTree to NetCDF atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written file, and an interrupted write leaves any previous
    file in place.

    Args:
        tree: The DataTree.
        path: Target file, conventionally ``*.nc``.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp)
    return path
