# SPDX-License-Identifier: MIT
r"""Semi-supervised VAE: a few labelled samples pin the latent axes to named factors [1].

The network is the Aux-VAE's (:class:`~invprior.priors.AuxVAE`: one auxiliary latent
coordinate per named factor, then the residual block), but the prior is the standard
normal :math:`N(0, I)` for every sample, and only a labelled subset :math:`\mathcal{L}`
of the :math:`N` training samples has its named factors :math:`y` used. With the
encoder's :math:`q(z_{aux} \mid x) = N(\mu_{aux}(x), \operatorname{diag}
\sigma_{aux}^2(x))`, the loss is

.. math::

    \frac1N \sum_{i=1}^{N} -\mathrm{ELBO}_\beta(x_i)
    + \frac{\gamma}{|\mathcal{L}|} \sum_{i \in \mathcal{L}} -\log q\big(a(y_i) \mid x_i\big),
    \qquad
    -\log q(a \mid x) = \frac12 \sum_{j=1}^{d} \Big(\frac{(a_j - \mu_{aux,j})^2}
        {\sigma_{aux,j}^2} + \log 2\pi\sigma_{aux,j}^2\Big),

with the standardised labels :math:`a(y) = (y - \mu_y) / \sigma_y`. The statistics
:math:`\mu_y, \sigma_y` are those of the factors' distribution (the simulator's prior),
not of individual labels. The Aux-VAE's correlation penalties are not used: the
unlabelled samples contribute the plain ELBO and the labelled ones add the term above,
which breaks the rotational symmetry of the standard normal prior.

The two means are estimated separately at every optimiser step (the stratified
estimator of semi-supervised VAEs [2]): the ELBO on a mini-batch of all samples, the
label term on a mini-batch of the labelled ones (all of them when they fit in one
batch). Estimating both from one mini-batch instead gives few steps a label: with 1% of
labels and 128 samples per batch, 28% of the batches hold none and most others one or
two. :math:`\gamma`
weighs the mean label term against the mean ELBO; the sum form
:math:`\frac{\gamma'}{N}\sum_{\mathcal{L}}` of [1] is :math:`\gamma = \gamma' |\mathcal{L}| / N`.

References:
    [1] C. Jacobsen and K. Duraisamy, "Disentangling Generative Factors of Physical Fields
        Using Variational Autoencoders", Frontiers in Physics 10, 890910 (2022),
        https://doi.org/10.3389/fphy.2022.890910 (arXiv:2109.07399), section on
        semi-supervised learning.
    [2] D. P. Kingma, D. J. Rezende, S. Mohamed, M. Welling, "Semi-Supervised Learning
        with Deep Generative Models", NeurIPS 2014, https://arxiv.org/abs/1406.5298
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .vae import AuxVAE

__all__ = ["SemiSupervisedVAE", "label_nll", "labelled_subset"]


class SemiSupervisedVAE(AuxVAE):
    r"""The Aux-VAE's network with the standard normal prior, for semi-supervised training.

    Takes the arguments of :class:`~invprior.priors.AuxVAE`. ``tau`` plays no part in
    training; it is the width of :math:`z_{aux} \mid u` when the model is used as a prior
    for inference, like the Aux-VAE's.

    Example:
        >>> import torch
        >>> from invprior.priors import GridSpec, SemiSupervisedVAE
        >>> g = SemiSupervisedVAE(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3],
        ...                       rec_dim=2, grid=GridSpec((16, 16)), channels=(8, 8))
        >>> g.conditional_prior_moments(None, torch.zeros(4, 3))[1].shape
        torch.Size([4, 3])
    """

    def conditional_prior_moments(
        self, u: torch.Tensor | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The standard normal prior :math:`N(0, I)`; ``u`` is ignored."""
        return torch.zeros_like(like), torch.ones_like(like)


def label_nll(mu: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The negative log density :math:`-\log N(a; \mu, \operatorname{diag} \sigma^2)`.

    Args:
        mu: Encoder means of the auxiliary block, shape ``(*batch, d)``.
        logvar: Their log-variances :math:`\log\sigma^2`, shape ``(*batch, d)``.
        target: Standardised labels :math:`a(y)`, shape ``(*batch, d)``.

    Returns:
        :math:`\frac12 \sum_j ((a_j - \mu_j)^2 / \sigma_j^2 + \log 2\pi\sigma_j^2)`,
        shape ``(*batch,)``.
    """
    return 0.5 * ((target - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def labelled_subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """Which of ``n`` samples are labelled: a seeded random subset.

    Args:
        n: Number of samples.
        fraction: Fraction labelled, in ``[0, 1]``; at least one sample when positive.
        seed: Seed of the choice (its own stream, independent of other uses of ``seed``).

    Returns:
        Boolean mask, shape ``(n,)``, with ``round(fraction * n)`` (at least 1 when
        ``fraction > 0``) entries set.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    count = max(1, round(fraction * n)) if fraction > 0 else 0
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, 1]).choice(n, size=count, replace=False)] = True
    return mask
