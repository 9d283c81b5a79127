# SPDX-License-Identifier: MIT
r"""Pyro models: a disentangled generative prior and the inverse problem built on it.

The prior over a field :math:`x` on the generator's grid is

.. math::

    u_j \sim p(u_j), \quad e \sim N(0, I_d), \quad z_{aux} = a(u) + \tau e, \quad
    z_{rec} \sim N(0, I_r), \quad x = G(z_{aux}, z_{rec}),

written non-centred (the sampler moves :math:`e`, not :math:`z_{aux}`) so that a small
:math:`\tau` does not create a narrow ridge in the posterior. A flow generator
(DL-CFM, one with ``eps_shape``) adds its base noise :math:`\varepsilon \sim N(0, I)` on
the grid as a latent site, :math:`x = G(z_{aux}, z_{rec}, \varepsilon)`. The inverse problem adds
:math:`y \sim p(y \mid F(x))`, with :math:`F` a forward model such as
:class:`invprior.bridge.TorchForward`.

References:
    [1] E. Bingham et al., "Pyro: Deep Universal Probabilistic Programming", JMLR 20 (2019),
        https://arxiv.org/abs/1810.09538
    [2] O. Papaspiliopoulos, G. O. Roberts, M. Skold, "A general framework for the
        parametrization of hierarchical models", Statistical Science 22 (2007),
        https://doi.org/10.1214/088342307000000014
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.torch_distribution import TorchDistributionMixin

from .likelihood import GaussianLikelihood, Likelihood
from .priors.arrays import reference_tensor
from .priors.base import Generator
from .sites import AUX_NOISE, EPS, FIELD, NOISE_STD, OBS, Z_AUX, Z_REC

if TYPE_CHECKING:
    from .pde.base import SolveCounter

__all__ = ["DisentangledPrior", "ForwardMap", "InverseProblem"]


def _standard_normal_log_prob(value: torch.Tensor) -> torch.Tensor:
    r""":math:`\log N(x; 0, I)` over the last axis, shape ``value.shape[:-1]``."""
    return -0.5 * (value.square().sum(-1) + value.shape[-1] * math.log(2 * math.pi))


class DisentangledPrior:
    r"""A frozen generator as a Pyro prior with one sample site per named physical variable.

    Sites, in order: one scalar site per name in ``generator.aux_names`` (physical units),
    ``e_aux`` (shape ``(d,)``), the deterministic ``z_aux = a(u) + tau * e_aux``, ``z_rec``
    (shape ``(r,)``) and the deterministic ``field`` (shape ``(ny, nx)``). With ``d = 0``
    (beta-VAE, Gaussian-field baselines) only ``z_rec`` and ``field`` remain; with
    ``tau = 0`` there is no ``e_aux`` site and ``z_aux = a(u)``. A generator
    whose ``eps_shape`` is not None (:class:`invprior.priors.DLCFMGenerator`) gets one more site,
    ``eps`` of that shape, after ``z_rec``, passed to ``generator.decode(..., eps=eps)``
    (every other generator gets ``eps=None``).

    The generator is put in eval mode with gradients off and is never registered with
    ``pyro.module``. Base distributions are built on the generator's dtype and device at
    every call, so ``generator.to(device)`` moves the prior.

    Args:
        generator: The frozen generator (:class:`invprior.priors.Generator`).
        aux_priors: Optional prior per named variable, in physical units, each a scalar Pyro
            distribution; names left out get ``Uniform(*generator.aux_ranges[name])``.
        tau: Scale :math:`\tau \ge 0` of :math:`z_{aux} \mid u \sim N(a(u), \tau^2 I)`; None
            means ``generator.tau`` (the value it was trained with, 0 for a generator whose
            named block is its named variables, :class:`invprior.priors.SimulatorGenerator`).
        fixed_eps: Leave out the ``eps`` site of a flow generator and decode the
            conditional mean path (:math:`\varepsilon = 0`): far fewer latents for a fast
            MAP, an approximation to the prior (see ``DLCFMGenerator.decode``).

    Raises:
        ValueError: On unknown names, non-scalar distributions, a missing training range or
            a negative ``tau``.

    Example:
        >>> amplitude = dist.LogNormal(0.0, 0.5)
        >>> prior = DisentangledPrior(generator, {"amplitude": amplitude})  # doctest: +SKIP
        >>> field = prior()  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: Generator,
        aux_priors: Mapping[str, torch.distributions.Distribution] | None = None,
        tau: float | None = None,
        fixed_eps: bool = False,
    ) -> None:
        tau = float(generator.tau) if tau is None else tau
        if not (isinstance(tau, int | float) and np.isfinite(tau) and tau >= 0):
            raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
        aux_priors = dict(aux_priors or {})
        names = generator.aux_names
        unknown = sorted(set(aux_priors) - set(names))
        if unknown:
            raise ValueError(
                f"aux_priors has names {unknown} that the generator does not know; "
                f"its named variables are {list(names)}"
            )
        for name, prior in aux_priors.items():
            if not isinstance(prior, torch.distributions.Distribution) or (
                prior.batch_shape + prior.event_shape != torch.Size()
            ):
                raise ValueError(
                    f"aux_priors[{name!r}] must be a scalar Pyro distribution, got {prior!r}"
                )
        missing = [n for n in names if n not in aux_priors and n not in generator.aux_ranges]
        if missing:
            raise ValueError(
                f"no prior for {missing}: the generator records no training range for them; "
                f"pass aux_priors={{name: distribution}}"
            )
        self.generator = generator.eval().requires_grad_(False)
        self.aux_priors = aux_priors
        self.tau = float(tau)
        shape = generator.eps_shape
        self.eps_shape = None if fixed_eps or shape is None else torch.Size(shape)

    @property
    def aux_names(self) -> tuple[str, ...]:
        """Names of the physical sites, in the generator's order."""
        return self.generator.aux_names

    @property
    def latent_shapes(self) -> dict[str, torch.Size]:
        """Event shape of every latent sample site, in sampling order."""
        shapes = {name: torch.Size() for name in self.aux_names}
        if self.aux_names and self.tau > 0:
            shapes[AUX_NOISE] = torch.Size([len(self.aux_names)])
        shapes[Z_REC] = torch.Size([self.generator.rec_dim])
        if self.eps_shape is not None:
            shapes[EPS] = self.eps_shape
        return shapes

    def aux_distribution(self, name: str) -> torch.distributions.Distribution:
        """The prior of one named variable, in physical units."""
        if name in self.aux_priors:
            return self.aux_priors[name]
        ref = reference_tensor(self.generator)
        low, high = self.generator.aux_ranges[name]
        return dist.Uniform(ref.new_tensor(low), ref.new_tensor(high))

    def aux_latent(self, u: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        r""":math:`a(u) + \tau e`, shape ``(*batch, d)``, from ``u`` and ``e`` of that shape.

        ``e`` is None when ``tau = 0`` (no ``e_aux`` site): then :math:`a(u)`.
        """
        z_aux = self.generator.to_latent(u)
        return z_aux if e is None else z_aux + self.tau * e

    def __call__(self) -> torch.Tensor:
        """Sample the prior sites and return the field, shape ``(*batch, ny, nx)``."""
        ref = reference_tensor(self.generator)
        gen = self.generator
        d, r = len(self.aux_names), gen.rec_dim
        if d:
            u = torch.stack([pyro.sample(n, self.aux_distribution(n)) for n in self.aux_names], -1)
            e = None
            if self.tau > 0:
                noise = dist.Normal(ref.new_zeros(d), ref.new_ones(d)).to_event(1)
                e = pyro.sample(AUX_NOISE, noise)
            z_aux = pyro.deterministic(Z_AUX, self.aux_latent(u, e), event_dim=1)
        z_rec = pyro.sample(Z_REC, dist.Normal(ref.new_zeros(r), ref.new_ones(r)).to_event(1))
        if not d:
            z_aux = z_rec.new_zeros((*z_rec.shape[:-1], 0))
        eps = None
        if self.eps_shape is not None:
            zeros, ones = ref.new_zeros(self.eps_shape), ref.new_ones(self.eps_shape)
            eps = pyro.sample(EPS, dist.Normal(zeros, ones).to_event(len(self.eps_shape)))
        field = self.generator.decode(z_aux, z_rec, eps=eps)
        return pyro.deterministic(FIELD, field, event_dim=2)

    def log_prob(self, latent: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r"""Log prior density of the latent sites, without tracing the Pyro program.

        :math:`\sum_j \log p(u_j) + \log N(e; 0, I) + \log N(z_{rec}; 0, I)` (plus
        :math:`\log N(\varepsilon; 0, I)` with an ``eps`` site), the sum of the sample
        sites' ``log_prob`` in a trace of :meth:`__call__` conditioned on ``latent``.

        Args:
            latent: A value for every site in :attr:`latent_shapes`, each with shape
                ``(*batch, *event_shape)``; named values inside their priors' supports.

        Returns:
            The log density, shape ``(*batch,)``.
        """
        log_p = _standard_normal_log_prob(latent[Z_REC])
        for name in self.aux_names:
            log_p = log_p + self.aux_distribution(name).log_prob(latent[name])
        if self.aux_names and self.tau > 0:
            log_p = log_p + _standard_normal_log_prob(latent[AUX_NOISE])
        if self.eps_shape is not None:
            log_p = log_p + _standard_normal_log_prob(latent[EPS].flatten(-len(self.eps_shape)))
        return log_p

    def field_of(self, latent: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The field of latent site values, shape ``(*batch, ny, nx)`` (no tracing).

        The value the ``field`` site takes in a trace of :meth:`__call__` conditioned on
        ``latent``.

        Args:
            latent: A value for every site in :attr:`latent_shapes`, each with shape
                ``(*batch, *event_shape)``.
        """
        z_rec = latent[Z_REC]
        if self.aux_names:
            u = torch.stack([latent[n] for n in self.aux_names], -1)
            z_aux = self.aux_latent(u, latent[AUX_NOISE] if self.tau > 0 else None)
        else:
            z_aux = z_rec.new_zeros((*z_rec.shape[:-1], 0))
        eps = latent[EPS] if self.eps_shape is not None else None
        return self.generator.decode(z_aux, z_rec, eps=eps)

    def complete(self, latent: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """All prior sites given values of the latent sites (no forward solve).

        Args:
            latent: A value for every site in :attr:`latent_shapes`, in physical units, each
                with shape ``(*batch, *event_shape)``.

        Returns:
            Every site of the prior (latent and deterministic), shapes ``(*batch, ...)``.
        """
        missing = sorted(set(self.latent_shapes) - set(latent))
        if missing:
            raise ValueError(f"values for the latent sites {missing} are missing")
        trace = poutine.trace(poutine.condition(self, data=dict(latent))).get_trace()
        nodes = trace.nodes.items()
        return {name: site["value"] for name, site in nodes if site["type"] == "sample"}


def _check_noise_prior(
    noise: torch.distributions.Distribution,
) -> torch.distributions.Distribution:
    """``noise`` if it is a scalar Pyro distribution without mass on negative values."""
    if not isinstance(noise, TorchDistributionMixin) or (
        noise.batch_shape + noise.event_shape != torch.Size()
    ):
        raise ValueError(
            f"a noise prior must be a scalar Pyro distribution (the noise standard deviation), "
            f"got {noise!r}; pass e.g. pyro.distributions.HalfNormal(0.1)"
        )
    if bool(noise.support.check(torch.tensor(-1.0))):
        raise ValueError(
            f"a noise prior must have positive support, got {type(noise).__name__} on "
            f"{noise.support}; pass e.g. HalfNormal, LogNormal or Uniform(low > 0, high)"
        )
    return noise


@runtime_checkable
class ForwardMap(Protocol):
    """What :class:`InverseProblem` needs of a forward model, on the torch side.

    A callable from fields ``(*batch, ny, nx)`` to observations ``(*batch, n_obs)`` that
    records the grid it expects, counts its PDE solves and declares whether its
    vector-Jacobian product can be batched. :class:`invprior.bridge.TorchForward`
    implements it for every :class:`invprior.pde.ForwardModel`.

    Attributes:
        n_obs: Number of observations.
        grid_shape: ``(ny, nx)`` of the input fields.
        grid_bbox: ``((xmin, ymin), (xmax, ymax))`` of the input grid.
        counter: Forward and adjoint solves so far (:class:`invprior.pde.SolveCounter`).
        batched_vjp: Whether its backward takes a batch of cotangents in one reverse pass
            (``torch.autograd.grad`` with ``is_grads_batched``): true for a map written in
            torch alone (:class:`invprior.bridge.DenseObservationMap`), false where the
            backward leaves torch (a PDE adjoint solve). Newton's MAP and the ChEES
            preconditioner then form the observation Jacobian in one reverse pass instead
            of ``n_obs``.
    """

    n_obs: int
    grid_shape: tuple[int, int]
    grid_bbox: tuple[tuple[float, float], tuple[float, float]]
    counter: SolveCounter
    batched_vjp: bool

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        """Observations of ``field`` (shape ``(*batch, ny, nx)``), shape ``(*batch, n_obs)``."""
        ...


class InverseProblem:
    r"""The Pyro model :math:`p(y, z) = p(y \mid F(G(z)))\, p(z)` of an inverse problem.

    ``problem.model(obs)`` is an ordinary Pyro model: use it with ``Predictive``,
    ``poutine.trace``, SVI or MCMC as well as with :mod:`invprior.infer`.

    An unknown noise scale is a site: with ``noise`` a scalar Pyro distribution over
    :math:`\sigma`, the model samples ``noise_std`` after the prior's sites and observes
    :math:`y \sim N(F(x), \sigma^2 I)`; ``likelihood`` is then None and
    :meth:`likelihood_of` gives the Gaussian likelihood at a value of the site.

    Args:
        prior: A :class:`DisentangledPrior` (a bare generator is wrapped with default priors).
        forward: A :class:`ForwardMap`, e.g. :class:`invprior.bridge.TorchForward`: fields
            ``(*batch, ny, nx)`` to observations ``(*batch, n_obs)``.
        noise: Noise standard deviation (scalar or shape ``(n_obs,)``), a
            :class:`invprior.likelihood.Likelihood`, or a scalar Pyro distribution with
            positive support, the prior of an unknown noise standard deviation.

    Attributes:
        likelihood: The noise model, or None where the noise scale is a site.
        noise_prior: The prior of the ``noise_std`` site, or None for a fixed noise model.

    Raises:
        TypeError: If ``forward`` is not a :class:`ForwardMap` with an integer ``n_obs``.
        ValueError: If the noise is not positive, its prior is not scalar or puts mass on
            negative values, or the generator's grid differs from the grid the forward model
            expects.

    Example:
        >>> problem = InverseProblem(prior, forward, dist.HalfNormal(0.1))  # doctest: +SKIP
        >>> list(problem.latent_shapes)[-1]  # doctest: +SKIP
        'noise_std'
    """

    def __init__(
        self,
        prior: DisentangledPrior | Generator,
        forward: ForwardMap,
        noise: float | torch.Tensor | Likelihood | torch.distributions.Distribution,
    ) -> None:
        self.prior = prior if isinstance(prior, DisentangledPrior) else DisentangledPrior(prior)
        if not isinstance(forward, ForwardMap) or not isinstance(forward.n_obs, int | np.integer):
            raise TypeError(
                "forward must be a ForwardMap: a callable exposing an integer n_obs (number "
                f"of observations), grid_shape, grid_bbox, counter and batched_vjp; got "
                f"{type(forward).__name__}. Wrap a pde model with invprior.bridge.TorchForward"
            )
        self.forward = forward
        self.noise_prior: torch.distributions.Distribution | None = None
        self.likelihood: Likelihood | None
        if isinstance(noise, torch.distributions.Distribution):
            self.noise_prior, self.likelihood = _check_noise_prior(noise), None
        elif isinstance(noise, Likelihood):
            self.likelihood = noise
        else:
            self.likelihood = GaussianLikelihood(noise)
        self._check_grid()

    @property
    def latent_shapes(self) -> dict[str, torch.Size]:
        """Event shape of every latent sample site, in sampling order.

        The prior's sites, then ``noise_std`` (shape ``()``) where the noise scale is a site.
        """
        shapes = self.prior.latent_shapes
        if self.noise_prior is not None:
            shapes[NOISE_STD] = torch.Size()
        return shapes

    def likelihood_of(self, latent: Mapping[str, torch.Tensor]) -> Likelihood:
        """The likelihood given values of the latent sites.

        Args:
            latent: Site values; only ``noise_std`` (shape ``(*batch,)``) is read, and only
                where the noise scale is a site.

        Returns:
            ``likelihood``, or the Gaussian likelihood whose standard deviation is the
            ``noise_std`` value (kept on the autograd graph), broadcastable to
            ``(*batch, n_obs)``.
        """
        if self.noise_prior is None:
            return self.likelihood
        return GaussianLikelihood.of_value(latent[NOISE_STD].unsqueeze(-1))

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return int(self.forward.n_obs)

    def _check_grid(self) -> None:
        grid = self.prior.generator.grid
        shape = self.forward.grid_shape
        if tuple(shape) != tuple(grid.shape):
            raise ValueError(
                f"the generator's grid has shape {tuple(grid.shape)} but the forward model "
                f"expects fields of shape {tuple(shape)}; build the forward model on the "
                f"generator's grid"
            )
        bbox = self.forward.grid_bbox
        if not np.allclose(np.asarray(bbox), np.asarray(grid.bbox)):
            raise ValueError(
                f"the generator's grid covers {grid.bbox} but the forward model's grid is "
                f"{tuple(map(tuple, bbox))}; the field must cover the same domain as the mesh"
            )

    def check_obs(self, obs: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validated observations on the generator's dtype and device.

        Args:
            obs: Observed data, shape ``(n_obs,)``.

        Returns:
            The data as a tensor, shape ``(n_obs,)``.

        Raises:
            ValueError: On a wrong shape or non-finite values.
        """
        ref = reference_tensor(self.prior.generator)
        obs = torch.as_tensor(obs).to(dtype=ref.dtype, device=ref.device)
        if obs.shape != (self.n_obs,):
            raise ValueError(
                f"obs has shape {tuple(obs.shape)} but the forward model yields {self.n_obs} "
                f"observations; pass shape ({self.n_obs},)"
            )
        bad = (~torch.isfinite(obs)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(
                f"obs has NaN or infinite values at indices {bad[:10]}; remove or impute them"
            )
        return obs

    def model(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        """The joint model; returns the observations (sampled when ``obs`` is None).

        Args:
            obs: Observed data, shape ``(n_obs,)``, or None to sample from the prior
                predictive.

        Returns:
            Observations, shape ``(*batch, n_obs)``.
        """
        if obs is not None:
            obs = self.check_obs(obs)
        field = self.prior()
        likelihood = self.likelihood
        if self.noise_prior is not None:
            std = pyro.sample(NOISE_STD, self.noise_prior)
            likelihood = self.likelihood_of({NOISE_STD: std})
        return pyro.sample(OBS, likelihood.distribution(self.forward(field)), obs=obs)

    __call__ = model
