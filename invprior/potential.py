# SPDX-License-Identifier: MIT
r"""The potential energy of a Pyro model over its unconstrained latent sites.

With latent sites :math:`z_k` of support :math:`S_k`, bijections :math:`T_k: R^{n_k} \to S_k`
(``torch.distributions.biject_to``, or the probit map below for Uniform sites) and
unconstrained values :math:`\zeta_k`,

.. math::

    U(\zeta) = -\log p\big(y, T(\zeta)\big) - \sum_k \log\left|\det
    \frac{\partial T_k}{\partial \zeta_k}\right|,

what Pyro's ``initialize_model`` builds for ``HMC``/``NUTS`` given these transforms. Here
it is a picklable class, usable as ``NUTS(potential_fn=PotentialEnergy(problem, obs))``
with ``initial_params`` (a closure cannot be sent to another process).

:func:`potential_energy` chooses the evaluator once, when the potential is built:

- :class:`PotentialEnergy` for an :class:`~invprior.model.InverseProblem`, evaluated
  directly, without tracing ``problem.model`` with :mod:`pyro.poutine` (building a trace at
  every leapfrog step would dominate the cost for small generators and fast forward
  models): the prior terms in closed form, the prior's
  :meth:`~invprior.model.DisentangledPrior.field_of`, then the likelihood of
  ``problem.forward(field)`` (with the value of the ``noise_std`` site where the noise
  scale is unknown);
- :class:`TracedPotential` for any other Pyro model whose latent sites are continuous,
  called as ``model(obs)``: the log density of a trace conditioned on the constrained
  values, as ``initialize_model`` computes it.

Both share the packing (:class:`LatentLayout`) and the choice of transform
(:func:`site_transform`).

A site with a ``Uniform(l, h)`` prior is unconstrained by the probit map
:math:`u = l + (h - l)\,\Phi(\zeta)` (:math:`\Phi` the standard normal CDF) instead of
``biject_to``'s logistic one. Then :math:`\log p(u) + \log|du/d\zeta| = \log
\varphi(\zeta)`: a priori :math:`\zeta \sim N(0, 1)`, like ``e_aux``, ``z_rec`` and
``eps``, so the whole latent is standard normal under the prior (the non-centred form of
[2]). A posterior pressed against a bound of the prior box, which weakly identified
parameters often are, then has a Gaussian tail in :math:`\zeta` where the logistic map
gives an exponential one, and NUTS mixes faster along it (the demo's effective sample
sizes in both coordinates are in ``docs/results.md``). The sites that are standard normal
in :math:`\zeta` contribute :math:`-\tfrac12 \sum \zeta^2` and a constant, a handful of
tensor operations; only a named variable with another prior (a ``LogNormal``, say) costs
its density, bijection and log-Jacobian.

A PDE solver failure (:class:`invprior.pde.errors.PDESolveError`) raised while evaluating
:math:`U` becomes a divergence in HMC and NUTS through the forward model itself: the torch
bridge (:mod:`invprior.bridge`) registers it with Pyro's integrator.

References:
    [1] M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014),
        https://arxiv.org/abs/1111.4246
    [2] O. Papaspiliopoulos, G. O. Roberts, M. Skold, "A general framework for the
        parametrization of hierarchical models", Statistical Science 22 (2007).
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import pyro
import torch
from pyro import poutine
from pyro.distributions.torch_distribution import ExpandedDistribution
from torch.distributions import Distribution, Independent, Normal, Transform, Uniform, biject_to
from torch.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    CumulativeDistributionTransform,
    IndependentTransform,
)

from .model import ForwardMap, InverseProblem
from .pde.errors import PDESolveError
from .sites import EPS, NOISE_STD

__all__ = [
    "LatentLayout",
    "Potential",
    "PotentialEnergy",
    "TracedPotential",
    "is_pde_failure",
    "potential_energy",
    "probit_interval",
    "site_transform",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _sum_event(value: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Sum ``value`` ``(*batch, *event)`` over its event dimensions, shape ``batch``."""
    return value.flatten(batch_dims).sum(-1) if value.dim() > batch_dims else value


def probit_interval(low: torch.Tensor, high: torch.Tensor) -> Transform:
    r"""The bijection :math:`\zeta \mapsto l + (h - l)\,\Phi(\zeta)` from R onto ``(low, high)``.

    It maps :math:`N(0, 1)` onto ``Uniform(low, high)``.
    """
    standard = Normal(torch.zeros_like(low), torch.ones_like(low))
    return ComposeTransform(
        [CumulativeDistributionTransform(standard), AffineTransform(low, high - low)]
    )


def site_transform(fn: Distribution) -> Transform:
    """The bijection from unconstrained values onto the support of a sample site's ``fn``.

    :func:`probit_interval` for a ``Uniform`` (also expanded or reinterpreted with
    ``to_event``), ``biject_to(fn.support)`` for any other distribution.

    Args:
        fn: The site's distribution.

    Example:
        >>> site_transform(Uniform(torch.tensor(0.0), torch.tensor(2.0)))(torch.tensor(0.0))
        tensor(1.)
    """
    base = fn
    while isinstance(base, Independent | ExpandedDistribution):
        base = base.base_dist
    if not isinstance(base, Uniform):
        return biject_to(fn.support)
    probit = probit_interval(base.low, base.high)
    event_dim = len(fn.event_shape)
    return IndependentTransform(probit, event_dim) if event_dim else probit


def is_pde_failure(err: BaseException) -> bool:
    """Whether ``err`` is a PDE solver failure (:class:`invprior.pde.errors.PDESolveError`)."""
    return isinstance(err, PDESolveError)


class LatentLayout:
    """Packs the latent sites of a prior into one flat vector and back.

    Args:
        shapes: Event shape of every latent site, in order (``DisentangledPrior.latent_shapes``).
    """

    def __init__(self, shapes: Mapping[str, torch.Size]) -> None:
        self.shapes = {name: torch.Size(shape) for name, shape in shapes.items()}
        self.sizes = {name: shape.numel() for name, shape in self.shapes.items()}
        self.dim = sum(self.sizes.values())

    @property
    def names(self) -> tuple[str, ...]:
        """Site names in packing order."""
        return tuple(self.shapes)

    def pack(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate site values, shapes ``(*batch, *event_shape)``, to ``(*batch, dim)``."""
        parts = []
        for name, shape in self.shapes.items():
            value = values[name]
            batch = value.shape[: value.dim() - len(shape)]
            parts.append(value.reshape(batch + (self.sizes[name],)))
        return torch.cat(parts, dim=-1)

    def unpack(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split ``(*batch, dim)`` into site values of shape ``(*batch, *event_shape)``."""
        out, start = {}, 0
        for name, shape in self.shapes.items():
            stop = start + self.sizes[name]
            out[name] = flat[..., start:stop].reshape(flat.shape[:-1] + shape)
            start = stop
        return out

    def positions(self, names: tuple[str, ...]) -> torch.Tensor:
        """Flat positions of the sites ``names``, in that order; a long tensor."""
        offsets = itertools.accumulate(self.sizes.values(), initial=0)
        starts = dict(zip(self.names, offsets, strict=False))  # offsets has one more entry
        return torch.cat([torch.arange(starts[n], starts[n] + self.sizes[n]) for n in names])


class Potential(ABC):
    r"""The potential :math:`U(\zeta)` of a Pyro model given data, a picklable callable.

    What the inference routines use, whichever evaluator :func:`potential_energy` chose.

    Attributes:
        obs: The observed data.
        layout: The :class:`LatentLayout` of the latent sites.
        transforms: ``{site: T_k}`` from unconstrained to constrained values.
        num_evals: Number of evaluations so far (one per leapfrog step in HMC/NUTS).
    """

    obs: torch.Tensor
    layout: LatentLayout
    transforms: dict[str, Transform]
    num_evals: int

    @property
    @abstractmethod
    def forward(self) -> ForwardMap | None:
        """The forward map whose PDE solves are counted, or None."""

    @abstractmethod
    def _energy(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """:math:`U` of unconstrained site values, a scalar tensor."""

    @abstractmethod
    def sites(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every latent and deterministic site (not the data) given latent values.

        Args:
            values: Constrained value of every latent site, shapes
                ``(*batch, *event_shape)`` with at most one batch dimension.

        Returns:
            Site values, shapes ``(*batch, ...)``.
        """

    @abstractmethod
    def prior_latents(self, num: int) -> torch.Tensor:
        """Flat unconstrained latents of ``num`` prior draws, shape ``(num, dim)``."""

    def constrain(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unconstrained site values to physical values, same shapes."""
        return {name: self.transforms[name](params[name]) for name in self.layout.names}

    def unconstrain(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Physical site values to unconstrained values, same shapes."""
        return {name: self.transforms[name].inv(values[name]) for name in self.layout.names}

    def __call__(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""The potential energy :math:`U(\zeta)`, a scalar tensor.

        Args:
            params: Unconstrained value of every latent site, shapes ``event_shape``.
        """
        self.num_evals += 1
        return self._energy(params)

    def flat(self, latent: torch.Tensor) -> torch.Tensor:
        """:math:`U` of a flat unconstrained latent, shape ``(dim,)``."""
        return self(self.layout.unpack(latent))

    def batch(self, latent: torch.Tensor) -> torch.Tensor:
        """:math:`U` of a batch of flat latents ``(num, dim)``, shape ``(num,)``.

        One evaluation per row here; :class:`PotentialEnergy` evaluates the batch at once.
        """
        return torch.stack([self.flat(row) for row in latent])


def potential_energy(
    model: InverseProblem | Callable[..., object], obs: torch.Tensor
) -> Potential:
    """The potential of ``model`` given ``obs``; the evaluator is chosen here, once.

    Args:
        model: An :class:`~invprior.model.InverseProblem` (evaluated without tracing) or any
            Pyro model whose latent sites are continuous, called as ``model(obs)``.
        obs: Observed data (for an inverse problem shape ``(n_obs,)``).

    Returns:
        A :class:`PotentialEnergy` or a :class:`TracedPotential`.
    """
    if isinstance(model, InverseProblem):
        return PotentialEnergy(model, obs)
    return TracedPotential(model, obs)


class PotentialEnergy(Potential):
    r"""The potential :math:`U(\zeta)` of an inverse problem given data, without tracing.

    Args:
        problem: The inverse problem.
        obs: Observed data, shape ``(n_obs,)``.

    Attributes:
        transforms: ``{site: T_k}`` from unconstrained to constrained values.
        layout: The :class:`LatentLayout` of the latent sites (``problem.latent_shapes``).
        num_evals: Number of evaluations so far (one per leapfrog step in HMC/NUTS).

    Example:
        >>> potential = PotentialEnergy(problem, obs)  # doctest: +SKIP
        >>> kernel = NUTS(potential_fn=potential)  # doctest: +SKIP
    """

    def __init__(self, problem: InverseProblem, obs: torch.Tensor) -> None:
        self.problem = problem
        self.obs = problem.check_obs(obs)
        self.layout = LatentLayout(problem.latent_shapes)
        prior = problem.prior
        # the prior of every named site (and of noise_std), in physical units
        named = {name: prior.aux_distribution(name) for name in prior.aux_names}
        if problem.noise_prior is not None:
            named[NOISE_STD] = problem.noise_prior
        self.transforms: dict[str, Transform] = {
            name: self._transform(name, named) for name in self.layout.names
        }
        self.num_evals = 0
        uniform = {name: d for name, d in named.items() if isinstance(d, Uniform)}
        # Named sites under the probit map, their bounds, the other named sites with their
        # priors, and the unnamed sites (standard normal and unconstrained).
        self._probit = tuple(uniform)
        self._bounds = (
            (torch.stack([d.low for d in uniform.values()]).to(self.obs),
             torch.stack([d.high for d in uniform.values()]).to(self.obs))
            if uniform else None
        )  # fmt: skip
        self._other = {name: d for name, d in named.items() if name not in uniform}
        self._unnamed = tuple(name for name in self.layout.names if name not in named)
        standard = self._probit + self._unnamed
        self._num_standard = sum(self.layout.sizes[name] for name in standard)

    @property
    def forward(self) -> ForwardMap:
        """The problem's forward map."""
        return self.problem.forward

    def _transform(self, name: str, named: Mapping[str, Distribution]) -> Transform:
        """:func:`site_transform` of a named site's prior; the identity on R^n otherwise."""
        if name in named:
            return site_transform(named[name])
        if name == EPS:
            return biject_to(
                torch.distributions.constraints.independent(
                    torch.distributions.constraints.real, len(self.layout.shapes[EPS])
                )
            )
        return biject_to(torch.distributions.constraints.real_vector)

    def predict(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""The predicted observations :math:`F(G(z))` of constrained latent values.

        The prior's :meth:`~invprior.model.DisentangledPrior.field_of`, then the forward map:
        the prediction the potential's likelihood sees, and the one the Gauss-Newton
        Jacobian (:func:`invprior.infer.hessian.observation_jacobian`) differentiates.

        Args:
            values: Constrained value of every latent site (:meth:`constrain`), shapes
                ``(*batch, *event_shape)``.

        Returns:
            Predicted observations, shape ``(*batch, n_obs)``.
        """
        return self.problem.forward(self.problem.prior.field_of(values))

    def _energy(self, params: Mapping[str, torch.Tensor], likelihood: bool = True) -> torch.Tensor:
        r""":math:`U`, or its prior part without ``likelihood``, shape ``batch``.

        ``params`` have shapes ``(*batch, *event_shape)``; a scalar for ``batch = ()``.

        The probit-mapped named sites and the unnamed sites are standard normal in
        :math:`\zeta`: :math:`-\tfrac12 \sum \zeta^2` minus a constant. Each other named
        site (and ``noise_std``) adds its prior density at :math:`T_k(\zeta_k)` and its
        log-Jacobian.
        """
        values = dict(params)
        first = self.layout.names[0]
        batch_dims = params[first].dim() - len(self.layout.shapes[first])
        blocks = [params[name] for name in self._unnamed]
        if self._bounds is not None:
            low, high = self._bounds
            zeta = torch.stack([params[name] for name in self._probit], -1)
            u = low + (high - low) * torch.special.ndtr(zeta)
            values.update(zip(self._probit, u.unbind(-1), strict=True))
            blocks.insert(0, zeta)
        squares = _sum_event(blocks[0].square(), batch_dims)
        for block in blocks[1:]:
            squares = squares + _sum_event(block.square(), batch_dims)
        log_joint = -0.5 * squares - self._num_standard * _HALF_LOG_2PI
        for name, distribution in self._other.items():
            t = self.transforms[name]
            values[name] = t(params[name])
            log_prior = distribution.log_prob(values[name])
            log_jacobian = t.log_abs_det_jacobian(params[name], values[name])
            log_joint = log_joint + _sum_event(log_prior + log_jacobian, batch_dims)
        if likelihood:
            prediction = self.predict(values)
            lik = self.problem.likelihood_of(values)
            log_joint = log_joint + lik.log_prob(prediction, self.obs)
        return -log_joint

    def batch(self, latent: torch.Tensor) -> torch.Tensor:
        """:math:`U` of a batch of flat latents ``(num, dim)`` in one vectorised pass, ``(num,)``.

        The generator decodes the batch at once and the forward model maps it at once (the
        dense map as one matrix product, a PDE forward model one solve per row).
        """
        self.num_evals += latent.shape[0]
        return self._energy(self.layout.unpack(latent))

    def prior_energy(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""The prior part of :math:`U` (no forward solve), a scalar tensor."""
        return self._energy(params, likelihood=False)

    def sites(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every prior site (no forward solve), and ``noise_std`` where it is a site.

        Args:
            values: Constrained value of every latent site, shapes
                ``(*batch, *event_shape)``.

        Returns:
            Site values, shapes ``(*batch, ...)``.
        """
        sites = self.problem.prior.complete(values)
        if self.problem.noise_prior is not None:
            sites[NOISE_STD] = values[NOISE_STD]
        return sites

    def prior_latents(self, num: int) -> torch.Tensor:
        """Flat unconstrained latents of ``num`` prior draws, shape ``(num, dim)``."""
        with pyro.plate("draws", num):
            trace = poutine.trace(self.problem.prior).get_trace()
        values = {name: trace.nodes[name]["value"] for name in self.problem.prior.latent_shapes}
        if self.problem.noise_prior is not None:
            values[NOISE_STD] = self.problem.noise_prior.sample((num,)).to(self.obs)
        return self.layout.pack(self.unconstrain(values)).detach()


def _is_sample(site: dict) -> bool:
    """Whether a trace node is a sample site (a plate's subsample node is not)."""
    return site["type"] == "sample" and type(site["fn"]).__name__ != "_Subsample"


def _latent_sites(trace: poutine.Trace) -> dict[str, dict]:
    """The latent sample sites of a trace: not observed, deterministic or auxiliary."""
    return {
        name: site
        for name, site in trace.nodes.items()
        if _is_sample(site)
        and not site["is_observed"]
        and not site["infer"].get("_deterministic")
        and not site["infer"].get("is_auxiliary")
    }


class TracedPotential(Potential):
    r"""The potential :math:`U(\zeta)` of any Pyro model with continuous latent sites.

    The log density of ``model(obs)`` traced with :mod:`pyro.poutine`, conditioned on the
    constrained values, plus the log-Jacobians of the transforms: Pyro's
    ``initialize_model``, with :func:`site_transform` (the probit map for ``Uniform``
    sites). The latent sites, their shapes (batch and event) and transforms are read from
    one run of the model when the potential is built (with torch's random state restored
    afterwards); the bounds of a ``Uniform`` site must not depend on other sites.

    Args:
        model: A Pyro model, called as ``model(obs)``; its latent sites continuous.
        obs: The model's data.

    Raises:
        ValueError: If the model has no latent site or a latent site with discrete
            support.

    Example:
        >>> def model(obs):
        ...     scale = pyro.sample("scale", pyro.distributions.HalfNormal(1.0))
        ...     with pyro.plate("data", len(obs)):
        ...         pyro.sample("y", pyro.distributions.Normal(0.0, scale), obs=obs)
        >>> potential = TracedPotential(model, torch.tensor([0.5, -0.5]))
        >>> potential.layout.names, potential.transforms["scale"](torch.tensor(0.0))
        (('scale',), tensor(1.))
    """

    def __init__(self, model: Callable[..., object], obs: torch.Tensor) -> None:
        self.model = model
        self.obs = torch.as_tensor(obs)
        devices = [self.obs.device] if self.obs.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), poutine.block(), torch.no_grad():
            trace = poutine.trace(model).get_trace(self.obs)
        sites = _latent_sites(trace)
        if not sites:
            raise ValueError(
                "the model has no latent sample site: nothing to infer; pass a model with at "
                "least one pyro.sample site that is not observed"
            )
        discrete = [name for name, site in sites.items() if site["fn"].support.is_discrete]
        if discrete:
            raise ValueError(
                f"the latent sites {discrete} are discrete; these inference routines need "
                f"continuous latent sites: marginalise them out or observe them"
            )
        self.layout = LatentLayout({name: site["value"].shape for name, site in sites.items()})
        self.transforms = {name: site_transform(site["fn"]) for name, site in sites.items()}
        self.num_evals = 0

    @property
    def forward(self) -> None:
        """None: a general model exposes no forward map whose solves are counted."""
        return None

    def _trace(self, values: Mapping[str, torch.Tensor]) -> poutine.Trace:
        """A trace of ``model(obs)`` conditioned on latent values."""
        return poutine.trace(poutine.condition(self.model, data=dict(values))).get_trace(self.obs)

    def _energy(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        values = self.constrain(params)
        log_joint = self._trace(values).log_prob_sum()
        for name, t in self.transforms.items():
            log_joint = log_joint + t.log_abs_det_jacobian(params[name], values[name]).sum()
        return -log_joint

    def sites(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every latent and deterministic site given latent values, one model run per draw.

        Args:
            values: Constrained value of every latent site, shapes
                ``(*batch, *site_shape)`` with at most one batch dimension.

        Returns:
            Site values, shapes ``(*batch, ...)``.
        """
        first = self.layout.names[0]
        batched = values[first].dim() > len(self.layout.shapes[first])
        draws = [values]
        if batched:
            draws = [dict(zip(values, v, strict=True)) for v in zip(*values.values(), strict=True)]
        out: dict[str, list[torch.Tensor]] = {}
        with poutine.block(), torch.no_grad():
            for draw in draws:
                trace = self._trace(draw)
                for name, site in trace.nodes.items():
                    if not _is_sample(site):
                        continue
                    deterministic = site["infer"].get("_deterministic", False)
                    if name in values or deterministic or not site["is_observed"]:
                        out.setdefault(name, []).append(site["value"])
        if not batched:
            return {name: v[0] for name, v in out.items()}
        return {name: torch.stack(v) for name, v in out.items()}

    def prior_latents(self, num: int) -> torch.Tensor:
        """Flat unconstrained latents of ``num`` prior draws, shape ``(num, dim)``."""
        draws = []
        with poutine.block(), torch.no_grad():
            for _ in range(num):
                sites = _latent_sites(poutine.trace(self.model).get_trace(self.obs))
                values = {name: sites[name]["value"] for name in self.layout.names}
                draws.append(self.layout.pack(self.unconstrain(values)))
        return torch.stack(draws)
