# SPDX-License-Identifier: MIT
r"""A VAE with a learned hierarchical prior on its latent (the hierarchical prior of [1]).

The standard normal prior of a VAE is rotationally invariant, so its KL term cannot tell
a latent basis aligned with the generative factors from a rotated one. [1] replaces it
with a learned, non-rotationally-invariant prior

.. math::

    p_\phi(z) = \int p_\phi(z \mid \xi)\, p(\xi)\, d\xi, \qquad
    p(\xi) = N(0, I_k), \qquad
    p_\phi(z \mid \xi) = N\big(\mu_\phi(\xi), \operatorname{diag} \sigma_\phi^2(\xi)\big),

with a hyper-latent :math:`\xi` of small dimension :math:`k` and a small network
:math:`(\mu_\phi, \log\sigma_\phi^2)`. The integral has no closed form; an auxiliary
posterior :math:`r_\psi(\xi \mid z) = N(m_\psi(z), \operatorname{diag} s_\psi^2(z))`
gives the lower bound (Jensen)

.. math::

    \log p_\phi(z) \ge \mathbb{E}_{r_\psi(\xi \mid z)}\big[\log p_\phi(z \mid \xi)
        + \log p(\xi) - \log r_\psi(\xi \mid z)\big],

tight when :math:`r_\psi(\xi \mid z)` is the exact posterior :math:`p_\phi(\xi \mid z)`.
The KL term of the ELBO is therefore bounded from above by

.. math::

    \mathrm{KL}\big(q(z \mid x) \,\|\, p_\phi(z)\big) \le \mathbb{E}_{q(z \mid x)}
        [\log q(z \mid x)] - \mathbb{E}_{q(z \mid x)} \mathbb{E}_{r_\psi(\xi \mid z)}
        \big[\log p_\phi(z \mid \xi) + \log p(\xi) - \log r_\psi(\xi \mid z)\big],

and the training loss is :math:`\lVert \hat x - x \rVert^2 + \beta_t` times this bound
(see :func:`invprior.priors.train.vae_loss`). :math:`\mathbb{E}_q[\log q]` is the
closed-form negative entropy :math:`-\frac12 \sum_i (1 + \log 2\pi + \log\sigma_i^2)`;
the second expectation is estimated with one reparameterised sample of :math:`z` and one
of :math:`\xi`. The encoder, prior network and auxiliary posterior are trained jointly.

References:
    [1] C. Jacobsen and K. Duraisamy, "Disentangling Generative Factors of Physical Fields
        Using Variational Autoencoders", Frontiers in Physics 10, 890910 (2022),
        https://doi.org/10.3389/fphy.2022.890910 (arXiv:2109.07399), section on hierarchical
        priors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Normal

from .base import GridSpec, as_grid
from .vae import _ConvVAE

__all__ = ["HierarchicalVAE"]


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    layers = [nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


#: Bound :math:`L` of the soft-clipped log-variances, :math:`L \tanh(v / L)`.
_LOGVAR_BOUND = 8.0


def _normal(mean_logvar: torch.Tensor) -> Normal:
    r"""The diagonal Gaussian whose mean and raw log-variance are the two halves of the input.

    The log-variance is soft-clipped to :math:`L \tanh(v / L)`, :math:`L = 8`: a learned
    prior whose variance collapses towards 0 makes the KL bound, and its gradient, blow
    up, which stopped training runs with NaN weights; standard deviations stay within
    :math:`(e^{-4}, e^{4})`.
    """
    mean, raw = mean_logvar.chunk(2, dim=-1)
    logvar = _LOGVAR_BOUND * torch.tanh(raw / _LOGVAR_BOUND)
    return Normal(mean, (0.5 * logvar).exp())


class HierarchicalVAE(_ConvVAE):
    r"""The convolutional VAE of :class:`~invprior.priors.BetaVAE` with a hierarchical prior.

    The whole latent is the residual block (``aux_dim == 0``), so ``decode(z_aux, z_rec)``
    takes an empty ``z_aux`` as for the beta-VAE.

    Args:
        latent_dim: Size :math:`L` of the latent :math:`z` (``rec_dim``).
        hyper_dim: Size :math:`k` of the hyper-latent :math:`\xi` (small, e.g. 2-4).
        hyper_hidden: Width of the two hidden layers of both networks of the hyper-latent:
            the conditional prior network :math:`\xi \mapsto (\mu_\phi, \log\sigma_\phi^2)`
            (``conditional_prior_net``) and the auxiliary posterior
            :math:`z \mapsto (m_\psi, \log s_\psi^2)` (``hyper_posterior_net``).
        grid: Grid of the fields (a :class:`GridSpec` or its dict form).
        channels: Encoder channels per stride-2 convolution.
        hidden: Width of the encoder's and decoder's fully connected layers.
        field_offset: Field standardisation offset.
        field_scale: Field standardisation scale.
        positive: Non-negative output, :math:`x = s\,\operatorname{softplus}(y)`.

    Note:
        Used as a prior for inference (e.g. by ``invprior.DisentangledPrior``), the
        ``z_rec`` site gets a standard normal prior, not :math:`p_\phi(z)`. Sampling under
        the trained prior needs :math:`\xi` as an extra latent site with
        :math:`z \mid \xi \sim p_\phi(z \mid \xi)`; :meth:`prior_sample` draws from it.

    Example:
        >>> import torch
        >>> from invprior.priors import GridSpec, HierarchicalVAE
        >>> g = HierarchicalVAE(3, hyper_dim=2, grid=GridSpec((16, 16)), channels=(8, 8))
        >>> z = g.prior_sample(5)
        >>> g.decode(z[:, :0], z).shape
        torch.Size([5, 16, 16])
    """

    def __init__(
        self,
        latent_dim: int,
        hyper_dim: int = 2,
        hyper_hidden: int = 32,
        grid: GridSpec | dict = GridSpec(),  # noqa: B008
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 256,
        field_offset: float = 0.0,
        field_scale: float = 1.0,
        positive: bool = False,
    ) -> None:
        if latent_dim < 1 or hyper_dim < 1 or hyper_hidden < 1:
            raise ValueError(
                "latent_dim, hyper_dim and hyper_hidden must be at least 1, got "
                f"{latent_dim}, {hyper_dim} and {hyper_hidden}"
            )
        super().__init__(
            as_grid(grid), latent_dim, channels, hidden, field_offset, field_scale, positive
        )
        self._init_aux((), (), {}, torch.zeros(0), torch.ones(0))
        self.rec_dim = int(latent_dim)
        self.hyper_dim = int(hyper_dim)
        self.hyper_hidden = int(hyper_hidden)
        self.conditional_prior_net = _mlp(self.hyper_dim, self.hyper_hidden, 2 * self.rec_dim)
        self.hyper_posterior_net = _mlp(self.rec_dim, self.hyper_hidden, 2 * self.hyper_dim)

    def conditional_prior(self, xi: torch.Tensor) -> Normal:
        r"""The prior :math:`p_\phi(z \mid \xi)`, batch shape ``(*batch, latent_dim)``.

        Args:
            xi: Hyper-latent, shape ``(*batch, hyper_dim)``.
        """
        return _normal(self.conditional_prior_net(xi))

    def hyper_posterior(self, z: torch.Tensor) -> Normal:
        r"""The auxiliary posterior :math:`r_\psi(\xi \mid z)`, batch ``(*batch, hyper_dim)``.

        Args:
            z: Latent, shape ``(*batch, latent_dim)``.
        """
        return _normal(self.hyper_posterior_net(z))

    def prior_log_weights(self, z: torch.Tensor, num_samples: int = 1) -> torch.Tensor:
        r"""Log importance weights of the hierarchical prior at ``z``.

        The weights are :math:`w = \log p_\phi(z \mid \xi) + \log p(\xi)
        - \log r_\psi(\xi \mid z)` with :math:`\xi \sim r_\psi(\cdot \mid z)`
        (reparameterised).

        Their mean is an unbiased estimate of the lower bound on :math:`\log p_\phi(z)`;
        :math:`\log \frac1S \sum_s e^{w_s}` is the importance-sampling estimate, which
        tends to :math:`\log p_\phi(z)` itself as ``num_samples`` grows.

        Args:
            z: Latent, shape ``(*batch, latent_dim)``.
            num_samples: Number :math:`S` of hyper-latent samples per latent.

        Returns:
            Shape ``(num_samples, *batch)``.
        """
        r = self.hyper_posterior(z)
        xi = r.rsample((num_samples,))
        log_hyper = Normal(torch.zeros_like(xi), torch.ones_like(xi)).log_prob(xi)
        log_cond = self.conditional_prior(xi).log_prob(z.expand(num_samples, *z.shape))
        return log_cond.sum(-1) + log_hyper.sum(-1) - r.log_prob(xi).sum(-1)

    def kl_bound(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""One-sample estimate of the bound on :math:`\mathrm{KL}(q(z \mid x) \| p_\phi(z))`.

        :math:`\mathbb{E}_q[\log q]` is exact; the rest uses the sample ``z`` of
        :math:`q(z \mid x)` and one :math:`\xi \sim r_\psi(\xi \mid z)` (see the module
        docstring).

        Args:
            mu: Means of :math:`q(z \mid x)`, shape ``(*batch, latent_dim)``.
            logvar: Log-variances of :math:`q(z \mid x)`, shape ``(*batch, latent_dim)``.
            z: A reparameterised sample of :math:`q(z \mid x)`, shape ``(*batch, latent_dim)``.

        Returns:
            Shape ``(*batch,)``.
        """
        neg_entropy = -0.5 * (1.0 + math.log(2 * math.pi) + logvar).sum(-1)
        return neg_entropy - self.prior_log_weights(z).squeeze(0)

    @torch.no_grad()
    def prior_sample(self, n: int) -> torch.Tensor:
        r"""Latents from the hierarchical prior.

        Draws :math:`\xi \sim N(0, I)`, then :math:`z \sim p_\phi(z \mid \xi)`.

        Args:
            n: Number of samples.

        Returns:
            Shape ``(n, latent_dim)``, in the model's dtype and on its device.
        """
        like = self.field_scale
        xi = torch.randn(n, self.hyper_dim, dtype=like.dtype, device=like.device)
        return self.conditional_prior(xi).sample()

    def conditional_prior_moments(
        self, u: torch.Tensor | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Not available: the hierarchical prior is not Gaussian.

        Raises:
            NotImplementedError: Always; use :meth:`kl_bound` or :meth:`prior_sample`.
        """
        raise NotImplementedError(
            "HierarchicalVAE's prior is not Gaussian; use kl_bound for the KL term and "
            "prior_sample to draw latents"
        )

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-ready), for the checkpoint sidecar."""
        return {
            "latent_dim": self.rec_dim,
            "hyper_dim": self.hyper_dim,
            "hyper_hidden": self.hyper_hidden,
            **self._net_config(),
        }
