# SPDX-License-Identifier: MIT
r"""Loss terms of the Aux-VAE: KL against the conditional prior and correlation penalties.

All functions are pure: tensors in, tensors out, following the input's dtype and device.
The correlation penalties are computed over a *batch* of ``n`` samples, so they need
``n >= 3`` to be meaningful.

Notation: :math:`u \in \mathbb{R}^{n \times d}` are the named (auxiliary) variables,
:math:`\mu = (\mu_{aux}, \mu_{rec})` the encoder means, :math:`\rho(a, b)` the sample
Pearson correlation over the batch, and :math:`\tilde a = (a - \bar a) / s_a` the batch
standardisation. The penalties use the powers :math:`\tilde a^p`, :math:`p = 1..K`, so that
dependence which is not linear (e.g. :math:`\mu = |u|`) is seen as well.

References:
    [1] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025), Eqs. (7)-(9).
"""

from __future__ import annotations

import torch

__all__ = [
    "correlation",
    "explicitness_penalty",
    "gaussian_kl",
    "inter_independence",
    "intra_independence",
    "standardised_powers",
]

_EPS = 1e-8


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"expected two (n, p) and (n, q) tensors with the same n, got {tuple(a.shape)} "
            f"and {tuple(b.shape)}"
        )
    if a.shape[0] < 3:
        raise ValueError(f"batch correlations need at least 3 samples, got n={a.shape[0]}")


def _standardise(a: torch.Tensor) -> torch.Tensor:
    centred = a - a.mean(dim=0, keepdim=True)
    return centred / (centred.pow(2).mean(dim=0, keepdim=True).sqrt() + _EPS)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Pearson correlations between the columns of two batches.

    Args:
        a: Shape ``(n, p)``.
        b: Shape ``(n, q)``.

    Returns:
        :math:`\rho(a_i, b_j)`, shape ``(p, q)``; a constant column gives correlations 0.
    """
    _check_pair(a, b)
    return _standardise(a).T @ _standardise(b) / a.shape[0]


def standardised_powers(a: torch.Tensor, degree: int) -> torch.Tensor:
    r"""The powers :math:`\tilde a^p`, :math:`p = 1..K`, of the batch-standardised columns.

    Standardising first makes the powers well conditioned and lets the even powers pick
    up dependence that is symmetric about the mean.

    Args:
        a: Shape ``(n, p)``.
        degree: The largest power :math:`K \geq 1`.

    Returns:
        Shape ``(K, n, p)``; entry ``k`` is the power ``k + 1``.
    """
    if degree < 1:
        raise ValueError(f"degree must be at least 1, got {degree}")
    z = _standardise(a)
    return torch.stack([z.pow(p) for p in range(1, degree + 1)])


def _power_correlations(u: torch.Tensor, mu: torch.Tensor, degree: int) -> torch.Tensor:
    """Absolute correlations of all power pairs, shape ``(K, K, d, m)``."""
    _check_pair(u, mu)
    pu = _standardise_stack(standardised_powers(u, degree))
    pm = _standardise_stack(standardised_powers(mu, degree))
    return torch.einsum("pni,qnj->pqij", pu, pm).abs() / u.shape[0]


def _standardise_stack(a: torch.Tensor) -> torch.Tensor:
    centred = a - a.mean(dim=1, keepdim=True)
    return centred / (centred.pow(2).mean(dim=1, keepdim=True).sqrt() + _EPS)


def explicitness_penalty(u: torch.Tensor, mu_aux: torch.Tensor) -> torch.Tensor:
    r"""Explicitness penalty: each named variable is carried by its own latent coordinate.

    .. math::

        L_{exp} = \frac{1}{d} \sum_{j=1}^{d} \big(1 - \rho(u_j, \mu_{aux, j})\big)

    The signed correlation is used, so a flipped axis is penalised as well (the KL term
    against :math:`N(a(u), \tau^2 I)` asks for the same orientation). Zero when every
    :math:`\mu_{aux, j}` is an increasing affine function of :math:`u_j`. Not the metric
    :func:`invprior.priors.metrics.explicitness`, which scores :math:`|\rho|` (higher is
    better) on held-out data.

    Args:
        u: Named variables, shape ``(n, d)``.
        mu_aux: Encoder means of the auxiliary block, shape ``(n, d)``.

    Returns:
        Scalar in :math:`[0, 2]`.
    """
    if u.shape != mu_aux.shape:
        raise ValueError(
            f"u and mu_aux must have the same shape (n, d), got {tuple(u.shape)} and "
            f"{tuple(mu_aux.shape)}"
        )
    return (1.0 - torch.diagonal(correlation(u, mu_aux))).mean()


def intra_independence(u: torch.Tensor, mu_aux: torch.Tensor, degree: int = 3) -> torch.Tensor:
    r"""Intra-independence penalty: latent coordinate :math:`k` carries no other :math:`u_j`.

    .. math::

        L_{intra} = \frac{1}{K^2 d (d - 1)} \sum_{p, q = 1}^{K} \sum_{j \neq k}
            \big|\rho(\tilde u_j^{\,q}, \tilde\mu_{aux, k}^{\,p})\big|

    Zero (up to sampling noise) when :math:`\mu_{aux, k}` depends on :math:`u_k` alone and
    the named variables are independent.

    Args:
        u: Named variables, shape ``(n, d)``.
        mu_aux: Encoder means of the auxiliary block, shape ``(n, d)``.
        degree: Largest power :math:`K`.

    Returns:
        Scalar in :math:`[0, 1]`; zero when ``d == 1``.
    """
    d = u.shape[-1]
    if mu_aux.shape[-1] != d:
        raise ValueError(f"mu_aux must have d={d} columns like u, got {mu_aux.shape[-1]}")
    if d < 2:
        return u.new_zeros(())
    corr = _power_correlations(u, mu_aux, degree)
    off = ~torch.eye(d, dtype=torch.bool, device=u.device)
    return corr[..., off].mean()


def inter_independence(u: torch.Tensor, mu_rec: torch.Tensor, degree: int = 3) -> torch.Tensor:
    r"""Inter-independence penalty: the residual block carries none of the named variables.

    .. math::

        L_{inter} = \frac{1}{K^2 d\, r} \sum_{p, q = 1}^{K} \sum_{j=1}^{d} \sum_{l=1}^{r}
            \big|\rho(\tilde u_j^{\,q}, \tilde\mu_{rec, l}^{\,p})\big|

    There is no penalty among the residual coordinates themselves.

    Args:
        u: Named variables, shape ``(n, d)``.
        mu_rec: Encoder means of the residual block, shape ``(n, r)``.
        degree: Largest power :math:`K`.

    Returns:
        Scalar in :math:`[0, 1]`; zero when ``d == 0`` or ``r == 0``.
    """
    if u.shape[-1] == 0 or mu_rec.shape[-1] == 0:
        return u.new_zeros(())
    return _power_correlations(u, mu_rec, degree).mean()


def gaussian_kl(
    mu: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor, prior_var: torch.Tensor
) -> torch.Tensor:
    r"""KL divergence of a diagonal Gaussian posterior from a diagonal Gaussian prior.

    .. math::

        \mathrm{KL}\big(N(\mu, \sigma^2) \,\|\, N(\mu_0, \sigma_0^2)\big) = \frac12
        \sum_i \Big(\frac{\sigma_i^2 + (\mu_i - \mu_{0,i})^2}{\sigma_{0,i}^2} - 1
        - \log \frac{\sigma_i^2}{\sigma_{0,i}^2}\Big)

    With :math:`\mu_0 = (a(u), 0)` and :math:`\sigma_0^2 = (\tau^2 I_d, I_r)` this is the
    Aux-VAE's conditional prior; with :math:`(0, I)` the beta-VAE's.

    Args:
        mu: Posterior means, shape ``(*batch, m)``.
        logvar: Posterior log-variances, shape ``(*batch, m)``.
        prior_mean: Prior means, broadcastable to ``(*batch, m)``.
        prior_var: Prior variances (positive), broadcastable to ``(*batch, m)``.

    Returns:
        KL per sample, shape ``(*batch,)``.
    """
    log_prior_var = torch.log(torch.as_tensor(prior_var, dtype=mu.dtype, device=mu.device))
    log_ratio = logvar - log_prior_var
    return 0.5 * ((mu - prior_mean).pow(2) / prior_var + log_ratio.exp() - 1.0 - log_ratio).sum(-1)
