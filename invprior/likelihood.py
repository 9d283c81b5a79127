# SPDX-License-Identifier: MIT
r"""Observation noise models :math:`p(y \mid F(x))`.

A likelihood turns predicted observations :math:`F(x)`, shape ``(*batch, n_obs)``, into a
distribution over the data with event shape ``(n_obs,)``. It also reports its Fisher
information with respect to the prediction, which the Gauss-Newton Hessian of
:func:`invprior.infer.laplace` needs: :math:`H = J^T W J + H_{prior}`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyro.distributions as dist
import torch

__all__ = ["GaussianLikelihood", "Likelihood"]


class Likelihood(ABC):
    """A noise model for predicted observations."""

    @abstractmethod
    def distribution(self, prediction: torch.Tensor) -> dist.TorchDistribution:
        """The data distribution around a prediction.

        Args:
            prediction: Predicted observations, shape ``(*batch, n_obs)``.

        Returns:
            A distribution with batch shape ``batch`` and event shape ``(n_obs,)``.
        """

    @abstractmethod
    def fisher(self, prediction: torch.Tensor) -> torch.Tensor:
        r"""Diagonal Fisher information :math:`W` with respect to the prediction.

        Args:
            prediction: Predicted observations, shape ``(n_obs,)``.

        Returns:
            The diagonal of :math:`W`, shape ``(n_obs,)``.
        """


class GaussianLikelihood(Likelihood):
    r"""Independent Gaussian noise, :math:`y = F(x) + \sigma \odot \xi`, :math:`\xi \sim N(0, I)`.

    Args:
        noise_std: Noise standard deviation :math:`\sigma`, a positive scalar or one value per
            observation, shape ``(n_obs,)``.

    Raises:
        ValueError: If any standard deviation is not a finite positive number.

    Example:
        >>> lik = GaussianLikelihood(0.1)
        >>> lik.distribution(torch.zeros(3)).event_shape
        torch.Size([3])
    """

    def __init__(self, noise_std: float | torch.Tensor) -> None:
        if isinstance(noise_std, torch.Tensor):
            std = noise_std.detach().clone()
        else:
            std = torch.as_tensor(noise_std, dtype=torch.float64)
        if (
            std.dim() > 1
            or std.numel() == 0
            or not bool(torch.isfinite(std).all())
            or bool((std <= 0).any())
        ):
            raise ValueError(
                f"noise_std must be a finite positive scalar or one positive value per "
                f"observation, got {std.tolist()}; pass e.g. noise_std=0.01"
            )
        self.noise_std = std

    def std(self, prediction: torch.Tensor) -> torch.Tensor:
        """Noise standard deviation on the prediction's dtype and device, broadcastable."""
        std = self.noise_std.to(dtype=prediction.dtype, device=prediction.device)
        if std.dim() == 1 and std.numel() not in (1, prediction.shape[-1]):
            raise ValueError(
                f"noise_std has {std.numel()} values but the forward model yields "
                f"{prediction.shape[-1]} observations; pass a scalar or {prediction.shape[-1]} "
                f"values"
            )
        return std

    def distribution(self, prediction: torch.Tensor) -> dist.TorchDistribution:  # noqa: D102
        std = self.std(prediction).expand(prediction.shape)
        return dist.Normal(prediction, std).to_event(1)

    def fisher(self, prediction: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.std(prediction).expand(prediction.shape).pow(-2)
