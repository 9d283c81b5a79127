# SPDX-License-Identifier: MIT
"""The "oracle" Gaussian-field baseline a study runs on the same data as its deep prior."""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import numpy as np
import torch
import xarray as xr

from .. import infer
from ..infer import MapConfig
from ..model import DisentangledPrior, InverseProblem
from ..priors import GaussianFieldGenerator, Generator, GridSpec
from ..priors.simulate import simulate
from ..sites import FIELD
from .config import BaselineConfig

__all__ = ["baseline_seed", "gp_baseline", "oracle_gaussian", "oracle_gaussian_from_fields"]


def baseline_seed(
    generator: Generator, simulator: str, seed: int | None = None
) -> tuple[int, str]:
    """Seed of the baseline's simulator draws, and where it comes from.

    ``seed`` (``[baseline] seed``) when set, else the seed of the generator's training
    data (:attr:`~invprior.priors.Generator.training_data`) when it came from
    ``simulator`` (a study's :attr:`~invprior.study.StudyConfig.baseline_simulator`),
    else 0. Either way not a truth's seed, so held-out truths stay held out.

    Args:
        generator: The deep prior's generator.
        simulator: Simulator of the baseline's draws.
        seed: An explicit seed, or None.

    Returns:
        The seed and a phrase saying where it comes from.

    Example:
        >>> from invprior.priors import SimulatorGenerator
        >>> baseline_seed(SimulatorGenerator(), "source")
        (0, 'default: the generator records no training seed for this simulator')
    """
    if seed is not None:
        return seed, "[baseline] seed"
    data = generator.training_data
    if data.get("simulator") == simulator and "seed" in data:
        return int(data["seed"]), "the generator's training data"
    return 0, "default: the generator records no training seed for this simulator"


def oracle_gaussian(
    simulator: str,
    num_fields: int,
    seed: int,
    grid: GridSpec,
    variance_fraction: float = 0.999,
) -> GaussianFieldGenerator:
    r"""The "oracle" Gaussian prior of ``num_fields`` simulator draws, in float64.

    :func:`oracle_gaussian_from_fields` of ``num_fields`` draws of
    :func:`~invprior.priors.simulate.simulate`.

    Args:
        simulator: Simulator of the draws (``"source"`` or ``"conductivity"``).
        num_fields: Number of draws, at least 2.
        seed: Seed of the draws.
        grid: Grid of the fields (the deep prior's).
        variance_fraction: Share of the sample variance the kept modes carry, in ``(0, 1]``.

    Returns:
        The prior, float64.

    Example:
        >>> from invprior.priors import GridSpec
        >>> gp = oracle_gaussian("source", 50, 1, GridSpec((8, 8)))
        >>> gp.basis.dtype, gp.basis.shape[0]
        (torch.float64, 64)
    """
    draws = simulate(simulator, num_fields, seed, grid)
    return oracle_gaussian_from_fields(draws.fields, grid, variance_fraction)


def oracle_gaussian_from_fields(
    fields: np.ndarray,
    grid: GridSpec,
    variance_fraction: float = 0.999,
) -> GaussianFieldGenerator:
    r"""The "oracle" Gaussian prior: empirical moments of given fields, in float64.

    :meth:`~invprior.priors.GaussianFieldGenerator.from_samples` of ``fields`` cast to
    float64, :math:`x = \bar x + L z`, :math:`z \sim N(0, I_r)` with the fewest principal
    modes carrying ``variance_fraction`` of the sample variance. For a caller that needs
    the draws for more than this prior (:func:`oracle_gaussian` simulates them itself).

    Args:
        fields: Draws, shape ``(n, ny, nx)`` with ``n >= 2`` and ``(ny, nx)`` the grid's
            shape (any float dtype).
        grid: Grid of the fields.
        variance_fraction: Share of the sample variance the kept modes carry, in ``(0, 1]``.

    Returns:
        The prior, float64.

    Raises:
        ValueError: If ``fields`` does not have shape ``(n >= 2, ny, nx)`` or
            ``variance_fraction`` is not in ``(0, 1]``.

    Example:
        >>> from invprior.priors import GridSpec
        >>> fields = np.random.default_rng(0).normal(size=(20, 4, 4)).astype(np.float32)
        >>> gp = oracle_gaussian_from_fields(fields, GridSpec((4, 4)), 1.0)
        >>> gp.basis.dtype, tuple(gp.basis.shape)
        (torch.float64, (16, 16))
    """
    fields = torch.as_tensor(fields, dtype=torch.float64)
    return GaussianFieldGenerator.from_samples(fields, variance_fraction, grid)


def gp_baseline(
    problem: object,
    obs: torch.Tensor,
    simulator: str,
    config: BaselineConfig | None = None,
    *,
    map_config: MapConfig | None = None,
    seed: int = 0,
    linear: bool = False,
) -> xr.Dataset:
    r"""Posterior field summaries of the "oracle" Gaussian prior on the same data.

    The prior is :func:`oracle_gaussian` of ``config.num_fields`` draws of ``simulator``
    (seed ``config.seed``, None meaning 0) on the generator's grid,
    :math:`x = \bar x + L z`, :math:`z \sim N(0, I_r)`. It runs
    through the forward model and the noise model of ``problem``: MAP (``map_config`` with
    ``config.max_iterations``), then :func:`invprior.infer.laplace`,
    :math:`z \mid y \approx N(\hat z, H^{-1})`. The field is linear in :math:`z`, so the
    summaries are the Gaussian's own (no sampling): mean :math:`\bar x + L \hat z`, std
    :math:`\sqrt{\mathrm{diag}(L H^{-1} L^T)}`, 5%/95% quantiles mean :math:`\mp 1.645`
    std. For a linear forward model (the source problem) this is the exact posterior, up
    to the optimiser's tolerance; for a nonlinear one (the conductivity problem) it is the
    Laplace approximation at the MAP.

    Collective on the forward model's communicator (one forward and one adjoint solve per
    MAP step, then ``n_obs`` adjoint solves for the Jacobian).

    Args:
        problem: An :class:`invprior.model.InverseProblem`; its forward model, likelihood
            and generator grid are reused.
        obs: The data, shape ``(n_obs,)``.
        simulator: Simulator of the draws (``"source"`` or ``"conductivity"``).
        config: The baseline's settings (default :class:`BaselineConfig`).
        map_config: MAP settings (default :class:`invprior.infer.MapConfig`).
        seed: Seed of the MAP restarts.
        linear: Whether the forward model is linear (only labels the method as exact).

    Returns:
        ``mean``, ``std``, ``q05`` and ``q95`` on the grid nodes (dimensions ``(y, x)``, as
        the posterior's ``field``), with attributes describing the baseline: method,
        prior, rank, simulator, number of draws, seed. Stored as the group
        :data:`invprior.report.BASELINE` of a posterior DataTree, the report adds the
        ``gp_*`` metrics and panels.

    Example:
        >>> tree["baseline"] = gp_baseline(problem, obs, "source", linear=True)  # doctest: +SKIP
        >>> study_metrics(tree)["gp_rel_l2_error"]  # doctest: +SKIP
        0.31
    """
    config = config if config is not None else BaselineConfig()
    map_config = dataclasses.replace(
        map_config or MapConfig(), max_iterations=config.max_iterations
    )
    grid = problem.prior.generator.grid
    gp = oracle_gaussian(
        simulator, config.num_fields, config.seed or 0, grid, config.variance_fraction
    )
    gp_problem = InverseProblem(DisentangledPrior(gp), problem.forward, problem.likelihood)
    start = infer.map(gp_problem, obs, seed=seed, config=map_config)
    gauss = infer.laplace(gp_problem, obs, start)
    spread = gp.basis @ torch.linalg.cholesky(gauss.cov)  # (ny * nx, r)
    std = spread.square().sum(-1).sqrt().reshape(grid.shape).numpy()
    mean = start.sites[FIELD].numpy()
    z95 = NormalDist().inv_cdf(0.95)
    summary = {"mean": mean, "std": std, "q05": mean - z95 * std, "q95": mean + z95 * std}
    (x0, y0), (x1, y1) = grid.bbox
    coords = {"y": np.linspace(y0, y1, grid.shape[0]), "x": np.linspace(x0, x1, grid.shape[1])}
    attrs = {
        "method": "MAP + Laplace (exact: linear forward model, Gaussian prior)"
        if linear
        else "MAP + Laplace (Gauss-Newton approximation: nonlinear forward model)",
        "prior": "oracle Gaussian: empirical mean and covariance of simulator draws",
        "rank": int(gp.rec_dim),
        "variance_fraction": config.variance_fraction,
        "simulator": simulator,
        "num_fields": config.num_fields,
        "seed": config.seed or 0,
        "map_energy": start.potential_energy,
    }
    data = {name: (("y", "x"), value) for name, value in summary.items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)
