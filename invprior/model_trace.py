# SPDX-License-Identifier: MIT
r"""A Pyro model traced over many draws at once: site values, log likelihoods and densities.

A :class:`TracedModel` runs a model once per chain with all draws of the chain in one
plate, conditioned on their latent values. :func:`model_groups` reads from those traces
the deterministic sites, the pointwise log likelihood of each observed site (the site's
factors, or for a multivariate normal the conditional densities
:math:`\log p(y_i \mid y_{-i}, \theta)` [1]), replicated data, the log joint density
:math:`-U(\zeta)` on the unconstrained space, and draws of the prior and prior predictive
from a run with the data left out. :mod:`invprior.datatree` lays them out as a DataTree.

References:
    [1] P.-C. Buerkner, J. Gabry, A. Vehtari, "Efficient leave-one-out cross-validation for
        Bayesian non-factorized normal and Student-t models", Comput. Stat. 36 (2021),
        https://arxiv.org/abs/1810.10559
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import Transform, biject_to

from .infer.common import seeded
from .priors.arrays import to_numpy

__all__ = ["ModelGroups", "TracedModel", "independent_stats", "latent_names", "model_groups"]

_DRAWS = "_draws"
"""Name of the plate that vectorises a model over draws."""


@dataclass(frozen=True)
class TracedModel:
    """A Pyro model with its arguments and the batch structure of its sites.

    Attributes:
        fn: The model.
        args: Its positional arguments (the data included).
        kwargs: Its keyword arguments.
        nesting: Its plate nesting (the draws plate goes one dimension further left).
        batch_ndim: Batch dimensions of every site in one unbatched run.
        transforms: ``{site: T}`` from unconstrained to constrained values of the latent
            sites; a site left out gets ``biject_to`` of its support.
    """

    fn: Callable[..., object]
    args: tuple
    kwargs: dict
    nesting: int
    batch_ndim: dict[str, int]
    transforms: dict[str, Transform]

    @classmethod
    def of(
        cls,
        fn: Callable[..., object],
        args: tuple,
        kwargs: Mapping[str, object] | None,
        draw: Mapping[str, torch.Tensor],
        transforms: Mapping[str, Transform] | None = None,
    ) -> TracedModel:
        """The structure read from one run conditioned on one draw (one model evaluation)."""
        kwargs = dict(kwargs or {})
        with poutine.block(), torch.no_grad():
            trace = poutine.trace(poutine.condition(fn, data=dict(draw))).get_trace(
                *args, **kwargs
            )
        sites = [s for s in trace.nodes.values() if s["type"] == "sample"]
        nesting = max(
            (-f.dim for s in sites for f in s["cond_indep_stack"] if f.vectorized),
            default=0,
        )
        batch_ndim = {s["name"]: len(s["fn"].batch_shape) for s in sites}
        return cls(fn, tuple(args), kwargs, nesting, batch_ndim, dict(transforms or {}))

    def _expand(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """Draws ``(D, *shape)`` with singleton dimensions up to the draws plate."""
        extra = self.nesting - self.batch_ndim.get(name, 0)
        return value.reshape(value.shape[:1] + (1,) * extra + value.shape[1:])

    def squeeze(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """A site value from a vectorised trace, ``(D, ...)``, without the padding dims."""
        extra = self.nesting - self.batch_ndim.get(name, 0)
        return value.reshape(value.shape[:1] + value.shape[1 + extra :])

    def trace(
        self, values: Mapping[str, torch.Tensor] | None, num: int, data: bool = True
    ) -> pyro.poutine.Trace:
        """A trace with ``num`` draws in a plate: conditioned on ``values`` ``(num, ...)``.

        With ``data`` off the observed sites are sampled too (``poutine.uncondition``).
        """
        fn = self.fn if data else poutine.uncondition(self.fn)
        if values:
            data_ = {n: self._expand(n, v) for n, v in values.items()}
            fn = poutine.condition(fn, data=data_)

        def vectorised(*args: object, **kwargs: object) -> object:
            with pyro.plate(_DRAWS, num, dim=-(self.nesting + 1)):
                return fn(*args, **kwargs)

        with poutine.block(), torch.no_grad():
            return poutine.trace(vectorised).get_trace(*self.args, **self.kwargs)


def _sites(trace: pyro.poutine.Trace) -> dict[str, dict]:
    return {n: s for n, s in trace.nodes.items() if s["type"] == "sample" and n != _DRAWS}


def _is_deterministic(site: dict) -> bool:
    return bool(site["infer"].get("_deterministic"))


def _pointwise_log_lik(fn: dist.Distribution, value: torch.Tensor) -> torch.Tensor:
    r"""One log density per observed value, shape ``(*batch, *event)``.

    Independent factors are split; a multivariate normal gives the conditional densities
    :math:`\log p(y_i \mid y_{-i})` [1]: with precision :math:`Q` and :math:`g = Q(y -
    \mu)`, :math:`\tfrac12 \log(Q_{ii} / 2\pi) - g_i^2 / (2 Q_{ii})`.
    """
    while isinstance(fn, dist.ExpandedDistribution | torch.distributions.Independent):
        if isinstance(fn, torch.distributions.Independent):
            fn = fn.base_dist
        else:
            fn = fn.base_dist.expand(fn.batch_shape)
    if isinstance(fn, torch.distributions.MultivariateNormal):
        precision = fn.precision_matrix
        g = (precision @ (value - fn.loc).unsqueeze(-1)).squeeze(-1)
        q = precision.diagonal(dim1=-2, dim2=-1)
        return 0.5 * torch.log(q / (2 * math.pi)) - 0.5 * g.square() / q
    if fn.event_shape:
        raise ValueError(
            f"cannot split the log likelihood of a {type(fn).__name__} into one value per "
            f"observation; use independent factors (.to_event) or a MultivariateNormal"
        )
    return fn.log_prob(value)


def latent_names(trace: pyro.poutine.Trace) -> list[str]:
    """Names of the latent sites of a trace (not observed, deterministic or auxiliary)."""
    return [
        n
        for n, s in _sites(trace).items()
        if not s["is_observed"] and not _is_deterministic(s)
        and not s["infer"].get("is_auxiliary")
    ]  # fmt: skip


def _log_density(
    model: TracedModel, trace: pyro.poutine.Trace, latent: Collection[str], num: int
) -> torch.Tensor:
    r""":math:`-U(\zeta)` of every draw of a trace conditioned on the ``latent`` sites.

    Returns:
        The log densities, shape ``(num,)``.
    """
    total = torch.zeros(num, dtype=torch.float64)
    for name, site in _sites(trace).items():
        if _is_deterministic(site):
            continue
        value = site["value"]
        log_p = site["fn"].log_prob(value)
        if name in latent:
            t = model.transforms.get(name) or biject_to(site["fn"].support)
            log_p = log_p + t.log_abs_det_jacobian(t.inv(value), value)
        total = total + log_p.reshape(num, -1).sum(-1).to(total)
    return total


@dataclass
class ModelGroups:
    """Arrays per group and variable, sample dimensions first."""

    posterior: dict[str, np.ndarray]
    log_likelihood: dict[str, np.ndarray]
    posterior_predictive: dict[str, np.ndarray]
    observed_data: dict[str, np.ndarray]
    prior: dict[str, np.ndarray]
    prior_predictive: dict[str, np.ndarray]
    lp: np.ndarray


def model_groups(
    model: TracedModel,
    draws: Mapping[str, torch.Tensor],
    *,
    posterior_predictive: bool,
    num_prior_draws: int,
    seed: int,
    device: torch.device,
) -> ModelGroups:
    """Every group the model gives, one vectorised run per chain and one for the prior.

    Args:
        model: The model.
        draws: Latent site values, shapes ``(chain, draw, *shape)``.
        posterior_predictive: Draw replicated data.
        num_prior_draws: Draws of the prior and prior predictive (0: none).
        seed: Seed of the replicated data (the prior draws use ``seed + 1``).
        device: Device of the random draws.
    """
    post: dict[str, list] = {}
    loglik: dict[str, list] = {}
    reps: dict[str, list] = {}
    lps, observed = [], {}
    num_chains, num = next(iter(draws.values())).shape[:2]
    with seeded(seed, device):
        for chain in range(num_chains):
            trace = model.trace({n: v[chain] for n, v in draws.items()}, num)
            lps.append(to_numpy(_log_density(model, trace, draws, num)))
            for name, site in _sites(trace).items():
                if _is_deterministic(site):
                    post.setdefault(name, []).append(model.squeeze(name, site["value"]))
                elif site["is_observed"] and name not in draws:
                    observed[name] = site["value"]
                    point = _pointwise_log_lik(site["fn"], site["value"])
                    loglik.setdefault(name, []).append(model.squeeze(name, point))
                    if posterior_predictive:
                        rep = model.squeeze(name, site["fn"].sample())
                        reps.setdefault(name, []).append(rep)
    prior, prior_pred = {}, {}
    if num_prior_draws:
        with seeded(seed + 1, device):
            trace = model.trace(None, num_prior_draws, data=False)
        for name, site in _sites(trace).items():
            value = to_numpy(model.squeeze(name, site["value"]))[None]
            if name in observed:
                prior_pred[name] = value
            elif not site["infer"].get("is_auxiliary"):
                prior[name] = value

    def stack(groups: dict[str, list]) -> dict[str, np.ndarray]:
        return {n: to_numpy(torch.stack(v)) for n, v in groups.items()}

    return ModelGroups(
        posterior={**{n: to_numpy(v) for n, v in draws.items()}, **stack(post)},
        log_likelihood=stack(loglik),
        posterior_predictive=stack(reps),
        observed_data={n: to_numpy(v) for n, v in observed.items()},
        prior=prior,
        prior_predictive=prior_pred,
        lp=np.stack(lps),
    )


def independent_stats(lp: np.ndarray) -> dict[str, np.ndarray]:
    """Sampler statistics of independent draws (no trajectory), shapes ``(chain, draw)``."""
    return {
        "diverging": np.zeros(lp.shape, dtype=bool),
        "energy": -lp,
        "lp": lp,
        "n_steps": np.zeros(lp.shape, dtype=np.int64),
        "tree_depth": np.zeros(lp.shape, dtype=np.int64),
        "step_size": np.full(lp.shape, np.nan),
        "acceptance_rate": np.ones(lp.shape),
    }
