# SPDX-License-Identifier: MIT
r"""The generator's approximation error as part of the noise (Bayesian approximation error).

A generator cannot represent every field of its simulator exactly:
:math:`x = G(\hat z(x)) + e` with :math:`\hat z(x)` the encoder mean. With small
measurement noise, ignoring :math:`e` makes the posterior confidently wrong: the data pin
the latent down to a field the prior cannot reach, and the truth falls outside the
credible band. The approximation-error model [1] treats the field error :math:`e` and its
image in the data :math:`\varepsilon = F(x) - F(G(\hat z(x)))` as jointly Gaussian and
independent of :math:`z`, with moments estimated from simulator draws:

.. math::

    y = F(G(z)) + \varepsilon + \eta, \quad \eta \sim N(0, \Sigma_\eta) \quad\Rightarrow\quad
    y \mid z \sim N\big(F(G(z)) + m_\varepsilon,\; S\big), \quad
    S = \Sigma_\eta + C_{\varepsilon\varepsilon}.

Given a posterior draw :math:`z` and its residual :math:`r = y - F(G(z))`, the field
error has the Gaussian conditional

.. math::

    e \mid r \sim N\big(m_e + C_{e\varepsilon} S^{-1} (r - m_\varepsilon),\;
    C_{ee} - C_{e\varepsilon} S^{-1} C_{\varepsilon e}\big),

and the posterior field is :math:`G(z) + e`. Draws use pathwise conditioning (Matheron's
rule [2]) on the stored sample deviations, so no ``(ny nx) x (ny nx)`` covariance is
ever formed: with :math:`w \sim N(0, I_n)`, :math:`e^* = m_e + D_e^T w`,
:math:`\varepsilon^* = m_\varepsilon + D_\varepsilon^T w` and
:math:`\eta^* \sim N(0, \Sigma_\eta)`,
:math:`e = e^* + D_e^T D_\varepsilon S^{-1}(r - \varepsilon^* - \eta^*)`, where the rows of
:math:`D` are the centred sample errors divided by :math:`\sqrt{n - 1}`.

References:
    [1] J. Kaipio, E. Somersalo, "Statistical inverse problems: discretization, model
        reduction and inverse crimes", J. Comput. Appl. Math. 198 (2007),
        https://doi.org/10.1016/j.cam.2005.09.027
    [2] J. T. Wilson et al., "Efficiently sampling functions from Gaussian process
        posteriors", ICML 2020, https://arxiv.org/abs/2002.09309
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .infer.common import seeded
from .likelihood import CorrelatedGaussianLikelihood
from .priors.base import Encoder, Generator
from .priors.batched import decode_latents, encode_means, least_squares_latents

__all__ = ["ApproximationError"]


def _noise_cov(noise_std: float | torch.Tensor, n_obs: int, like: torch.Tensor) -> torch.Tensor:
    r"""Diagonal :math:`\Sigma_\eta`, shape ``(n_obs, n_obs)``, from a scalar or per-sensor std."""
    std = torch.as_tensor(noise_std).to(like)
    if std.dim() > 1 or std.numel() not in (1, n_obs) or not bool((std > 0).all()):
        raise ValueError(
            f"noise_std must be a positive scalar or {n_obs} positive values, got {std.tolist()}"
        )
    return torch.diag(std.expand(n_obs).square())


@dataclass(frozen=True)
class ApproximationError:
    r"""Sample moments of a generator's approximation error, in the field and in the data.

    Attributes:
        field_mean: :math:`m_e`, shape ``(ny, nx)``.
        field_dev: :math:`D_e`, centred field errors over :math:`\sqrt{n-1}`, shape
            ``(n, ny * nx)``.
        obs_mean: :math:`m_\varepsilon`, shape ``(n_obs,)``.
        obs_dev: :math:`D_\varepsilon`, shape ``(n, n_obs)``.
    """

    field_mean: torch.Tensor
    field_dev: torch.Tensor
    obs_mean: torch.Tensor
    obs_dev: torch.Tensor

    @classmethod
    def estimate(
        cls,
        generator: Generator,
        fields: np.ndarray | torch.Tensor,
        forward: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int = 256,
        refine_steps: int = 0,
    ) -> ApproximationError:
        r"""Estimate the moments from simulator draws (none of them the truth).

        Costs one encoder and one decoder pass per draw and ``2 n`` forward solves
        (:math:`F(x)` and :math:`F(G(\hat z(x)))`; collective on the forward model's
        communicator).

        Args:
            generator: A generator with an encoder (an :class:`~invprior.priors.Encoder`:
                an Aux-VAE, beta-VAE or DL-CFM generator).
            fields: Simulator draws on the generator's grid, shape ``(n, ny, nx)``, n >= 2.
            forward: Torch forward model, fields ``(*batch, ny, nx)`` to ``(*batch, n_obs)``.
            batch_size: Fields per batch.
            refine_steps: L-BFGS iterations that move each encoder mean towards the
                least-squares projection :math:`\arg\min_z \|x - G(z)\|^2` before the error
                is taken; 0 keeps the encoder means (their amortisation gap then counts
                as error, a conservative estimate).

        Returns:
            The moments, float64 on the CPU.

        Raises:
            TypeError: If the generator has no encoder.
            ValueError: On fewer than two fields, a wrong grid or non-finite values.
        """
        if not isinstance(generator, Encoder):
            raise TypeError(
                f"{type(generator).__name__} has no encoder, so its approximation error "
                "cannot be estimated; use a generator with an encoder (an Aux-VAE, beta-VAE "
                "or DL-CFM generator)"
            )
        x = np.asarray(torch.as_tensor(fields).detach().cpu(), dtype=np.float64)
        if x.ndim != 3 or x.shape[0] < 2 or x.shape[1:] != tuple(generator.grid.shape):
            raise ValueError(
                f"fields must have shape (n >= 2, {generator.grid.shape[0]}, "
                f"{generator.grid.shape[1]}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("fields hold NaN or infinite values")
        z = encode_means(generator, x, batch_size)
        if refine_steps:
            z = least_squares_latents(generator, x, z, refine_steps, batch_size)
        recon = decode_latents(generator, z, batch_size)
        with torch.no_grad():
            obs_err = torch.cat(
                [
                    forward(torch.as_tensor(x[i : i + batch_size]))
                    - forward(torch.as_tensor(recon[i : i + batch_size]))
                    for i in range(0, len(x), batch_size)
                ]
            ).double()
        err = torch.as_tensor(x - recon).reshape(len(x), -1)
        scale = 1.0 / np.sqrt(len(x) - 1)
        return cls(
            field_mean=err.mean(0).reshape(x.shape[1:]),
            field_dev=(err - err.mean(0)) * scale,
            obs_mean=obs_err.mean(0),
            obs_dev=(obs_err - obs_err.mean(0)) * scale,
        )

    @property
    def obs_cov(self) -> torch.Tensor:
        r""":math:`C_{\varepsilon\varepsilon}`, shape ``(n_obs, n_obs)``."""
        return self.obs_dev.T @ self.obs_dev

    def std_over_noise(self, noise_std: float | torch.Tensor) -> torch.Tensor:
        r"""Per observation, the error's std over the noise std: :math:`\sqrt{C_{ii}} / \sigma_i`.

        Below 1, the generator's representation error in the data is smaller than the
        measurement noise, so the data see the generator as exact.

        Args:
            noise_std: Measurement noise std, a scalar or one value per observation.

        Returns:
            Shape ``(n_obs,)``, float64.
        """
        n_obs = self.obs_mean.numel()
        std = _noise_cov(noise_std, n_obs, self.obs_dev).diagonal().sqrt()
        return self.obs_dev.square().sum(0).sqrt() / std

    def likelihood(self, noise_std: float | torch.Tensor) -> CorrelatedGaussianLikelihood:
        r"""The enhanced noise model :math:`y \mid z \sim N(F(G(z)) + m_\varepsilon, S)`.

        Args:
            noise_std: Measurement noise std, a scalar or one value per observation.
        """
        cov = _noise_cov(noise_std, self.obs_mean.numel(), self.obs_dev) + self.obs_cov
        return CorrelatedGaussianLikelihood(cov, self.obs_mean, noise_std)

    def conditional_draws(
        self, residual: torch.Tensor, noise_std: float | torch.Tensor, seed: int = 0
    ) -> torch.Tensor:
        r"""Draws of the field error given data residuals, by pathwise conditioning.

        Args:
            residual: :math:`r = y - F(G(z))` of each posterior draw, shape ``(s, n_obs)``.
            noise_std: Measurement noise std, as for :meth:`likelihood`.
            seed: Seed of the draws.

        Returns:
            One draw of :math:`e \mid r` per residual, shape ``(s, ny, nx)``, float64.
        """
        r = torch.as_tensor(residual).detach().cpu().double()
        n_obs = self.obs_mean.numel()
        if r.dim() != 2 or r.shape[1] != n_obs:
            raise ValueError(f"residual must have shape (s, {n_obs}), got {tuple(r.shape)}")
        noise_cov = _noise_cov(noise_std, n_obs, self.obs_dev)
        chol = torch.linalg.cholesky(noise_cov + self.obs_cov)
        with seeded(seed, torch.device("cpu")):
            w = torch.randn(len(r), self.field_dev.shape[0], dtype=torch.float64)
            eta = torch.randn(len(r), n_obs, dtype=torch.float64) @ noise_cov.sqrt()
        eps = self.obs_mean + w @ self.obs_dev
        gain = torch.cholesky_solve((r - eps - eta).T, chol).T  # S^{-1} (r - eps* - eta*)
        e = self.field_mean.reshape(-1) + (w + gain @ self.obs_dev.T) @ self.field_dev
        return e.reshape(len(r), *self.field_mean.shape)

    def posterior_fields(
        self,
        fields: torch.Tensor,
        obs: torch.Tensor,
        forward: Callable[[torch.Tensor], torch.Tensor],
        noise_std: float | torch.Tensor,
        seed: int = 0,
    ) -> torch.Tensor:
        r"""Posterior field draws :math:`G(z) + e` from generator draws :math:`G(z)`.

        One forward solve per draw (collective on the forward model's communicator).

        Args:
            fields: Posterior generator fields, shape ``(*batch, ny, nx)``.
            obs: The data, shape ``(n_obs,)``.
            forward: The forward model the moments were estimated with.
            noise_std: Measurement noise std, as for :meth:`likelihood`.
            seed: Seed of the error draws.

        Returns:
            The fields with one conditional error draw added, same shape and dtype.
        """
        flat = fields.detach().reshape(-1, *fields.shape[-2:])
        with torch.no_grad():
            residual = torch.as_tensor(obs).to(flat) - forward(flat)
        e = self.conditional_draws(residual, noise_std, seed)
        return fields + e.to(fields).reshape(fields.shape)
