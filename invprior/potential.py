# SPDX-License-Identifier: MIT
r"""The potential energy of an inverse problem over its unconstrained latent sites.

With latent sites :math:`z_k` of support :math:`S_k`, bijections :math:`T_k: R^{n_k} \to S_k`
(``torch.distributions.biject_to``, or the probit map below for Uniform sites) and
unconstrained values :math:`\zeta_k`,

.. math::

    U(\zeta) = -\log p\big(y, T(\zeta)\big) - \sum_k \log\left|\det
    \frac{\partial T_k}{\partial \zeta_k}\right|,

what Pyro's ``initialize_model`` builds for ``HMC``/``NUTS`` given these transforms. Here
it is a picklable class, usable as ``NUTS(potential_fn=PotentialEnergy(problem, obs))``
with ``initial_params`` (a closure cannot be sent to another process).

It is evaluated directly, without tracing ``problem.model`` with :mod:`pyro.poutine`
(building a trace at every leapfrog step would dominate the cost for small generators and
fast forward models): the prior terms in closed form, the prior's
:meth:`~invprior.model.DisentangledPrior.decode`, then the likelihood of
``problem.forward(field)``.

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
from collections.abc import Mapping

import torch
from torch.distributions import Normal, Transform, biject_to
from torch.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    CumulativeDistributionTransform,
)

from .model import InverseProblem
from .sites import EPS

__all__ = ["LatentLayout", "PotentialEnergy", "is_pde_failure", "probit_interval"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def probit_interval(low: torch.Tensor, high: torch.Tensor) -> Transform:
    r"""The bijection :math:`\zeta \mapsto l + (h - l)\,\Phi(\zeta)` from R onto ``(low, high)``.

    It maps :math:`N(0, 1)` onto ``Uniform(low, high)``.
    """
    standard = Normal(torch.zeros_like(low), torch.ones_like(low))
    return ComposeTransform(
        [CumulativeDistributionTransform(standard), AffineTransform(low, high - low)]
    )


def is_pde_failure(err: BaseException) -> bool:
    """Whether ``err`` is a PDE solver failure (False when the PDE part is not importable)."""
    try:
        from .pde.errors import PDESolveError
    except ImportError:
        return False
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


class PotentialEnergy:
    r"""The potential :math:`U(\zeta)` of an inverse problem given data, a picklable callable.

    Args:
        problem: The inverse problem.
        obs: Observed data, shape ``(n_obs,)``.

    Attributes:
        transforms: ``{site: T_k}`` from unconstrained to constrained values.
        layout: The :class:`LatentLayout` of the latent sites.
        num_evals: Number of evaluations so far (one per leapfrog step in HMC/NUTS).

    Example:
        >>> potential = PotentialEnergy(problem, obs)  # doctest: +SKIP
        >>> kernel = NUTS(potential_fn=potential)  # doctest: +SKIP
    """

    def __init__(self, problem: InverseProblem, obs: torch.Tensor) -> None:
        self.problem = problem
        self.obs = problem.check_obs(obs)
        self.layout = LatentLayout(problem.prior.latent_shapes)
        self.transforms: dict[str, Transform] = {
            name: self._transform(name) for name in self.layout.names
        }
        self.num_evals = 0
        prior = problem.prior
        uniform = {
            name: d
            for name in prior.aux_names
            if isinstance(d := prior.aux_distribution(name), torch.distributions.Uniform)
        }
        # Named sites under the probit map, their bounds, the other named sites, and the
        # unnamed sites (standard normal and unconstrained).
        self._probit = tuple(uniform)
        self._bounds = (
            (torch.stack([d.low for d in uniform.values()]).to(self.obs),
             torch.stack([d.high for d in uniform.values()]).to(self.obs))
            if uniform else None
        )  # fmt: skip
        self._other = tuple(name for name in prior.aux_names if name not in uniform)
        self._unnamed = tuple(name for name in self.layout.names if name not in prior.aux_names)
        standard = self._probit + self._unnamed
        self._num_standard = sum(self.layout.sizes[name] for name in standard)

    def _transform(self, name: str) -> Transform:
        """:func:`probit_interval` for a Uniform site, else ``biject_to`` of its support."""
        if name in self.problem.prior.aux_names:
            prior = self.problem.prior.aux_distribution(name)
            if isinstance(prior, torch.distributions.Uniform):
                return probit_interval(prior.low, prior.high)
            return biject_to(prior.support)
        if name == EPS:
            return biject_to(
                torch.distributions.constraints.independent(
                    torch.distributions.constraints.real, len(self.layout.shapes[EPS])
                )
            )
        return biject_to(torch.distributions.constraints.real_vector)

    def constrain(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unconstrained site values to physical values, same shapes."""
        return {name: self.transforms[name](params[name]) for name in self.layout.names}

    def unconstrain(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Physical site values to unconstrained values, same shapes."""
        return {name: self.transforms[name].inv(values[name]) for name in self.layout.names}

    def _energy(self, params: Mapping[str, torch.Tensor], likelihood: bool) -> torch.Tensor:
        r""":math:`U`, or its prior part without ``likelihood``, a scalar tensor.

        The probit-mapped named sites and the unnamed sites are standard normal in
        :math:`\zeta`: :math:`-\tfrac12 \sum \zeta^2` minus a constant. Each other named
        site adds its prior density at :math:`T_k(\zeta_k)` and its log-Jacobian.
        """
        prior, values = self.problem.prior, dict(params)
        blocks = [params[name] for name in self._unnamed]
        if self._bounds is not None:
            low, high = self._bounds
            zeta = torch.stack([params[name] for name in self._probit], -1)
            u = low + (high - low) * torch.special.ndtr(zeta)
            values.update(zip(self._probit, u.unbind(-1), strict=True))
            blocks.insert(0, zeta)
        squares = blocks[0].square().sum()
        for block in blocks[1:]:
            squares = squares + block.square().sum()
        log_joint = -0.5 * squares - self._num_standard * _HALF_LOG_2PI
        for name in self._other:
            t = self.transforms[name]
            values[name] = t(params[name])
            log_prior = prior.aux_distribution(name).log_prob(values[name])
            log_jacobian = t.log_abs_det_jacobian(params[name], values[name])
            log_joint = log_joint + (log_prior + log_jacobian).sum()
        if likelihood:
            prediction = self.problem.forward(prior.decode(values))
            log_joint = log_joint + self.problem.likelihood.log_prob(prediction, self.obs)
        return -log_joint

    def __call__(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""The potential energy :math:`U(\zeta)`, a scalar tensor.

        Args:
            params: Unconstrained value of every latent site, shapes ``event_shape``.
        """
        self.num_evals += 1
        return self._energy(params, likelihood=True)

    def prior_energy(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""The prior part of :math:`U` (no forward solve), a scalar tensor."""
        return self._energy(params, likelihood=False)

    def flat(self, latent: torch.Tensor) -> torch.Tensor:
        """:math:`U` of a flat unconstrained latent, shape ``(dim,)``."""
        return self(self.layout.unpack(latent))
