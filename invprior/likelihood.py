# SPDX-License-Identifier: MIT
r"""Observation noise models :math:`p(y \mid F(x))`.

A likelihood turns predicted observations :math:`F(x)`, shape ``(*batch, n_obs)``, into a
distribution over the data with event shape ``(n_obs,)``. It also reports its Fisher
information with respect to the prediction, which the Gauss-Newton Hessian of
:func:`invprior.infer.laplace` needs: :math:`H = J^T W J + H_{prior}`.

:class:`GaussianLikelihood` is independent noise; :class:`CorrelatedGaussianLikelihood`
takes a full covariance and a mean offset, the form the approximation-error model of
:mod:`invprior.approximation_error` produces.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import pyro.distributions as dist
import torch

__all__ = ["CorrelatedGaussianLikelihood", "GaussianLikelihood", "Likelihood"]

_LOG_2PI = math.log(2 * math.pi)


class Likelihood(ABC):
    """A noise model for predicted observations.

    Attributes:
        noise_std: The measurement noise standard deviation, a scalar or one value per
            observation (recorded with the results).
    """

    noise_std: torch.Tensor

    def _cast(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """Tensor attribute ``name`` on the dtype and device of ``like``, copied once for each.

        Keeps the gradient path free of host-to-device copies when the generator (and so
        the prediction) lives on a GPU.
        """
        cache = self.__dict__.setdefault("_copies", {})
        key = (name, like.dtype, like.device)
        if key not in cache:
            cache[key] = getattr(self, name).to(dtype=like.dtype, device=like.device)
        return cache[key]

    @abstractmethod
    def distribution(self, prediction: torch.Tensor) -> dist.TorchDistribution:
        """The data distribution around a prediction.

        Args:
            prediction: Predicted observations, shape ``(*batch, n_obs)``.

        Returns:
            A distribution with batch shape ``batch`` and event shape ``(n_obs,)``.
        """

    def log_prob(self, prediction: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(y \mid F(x))`, shape ``batch``; equals ``distribution(...).log_prob``.

        Subclasses may override it with a formula that builds no distribution object, which
        the potential energy evaluates at every leapfrog step.

        Args:
            prediction: Predicted observations, shape ``(*batch, n_obs)``.
            obs: Observed data, shape ``(n_obs,)``.
        """
        return self.distribution(prediction).log_prob(obs)

    @abstractmethod
    def fisher(self, prediction: torch.Tensor) -> torch.Tensor:
        r"""Fisher information :math:`W` with respect to the prediction.

        Args:
            prediction: Predicted observations, shape ``(n_obs,)``.

        Returns:
            :math:`W`, shape ``(n_obs, n_obs)``.
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

    @classmethod
    def of_value(cls, noise_std: torch.Tensor) -> GaussianLikelihood:
        """The likelihood of a standard deviation that is a value of a site, unchecked.

        The tensor is kept as given, on the autograd graph, so the log density is
        differentiable in it (the ``noise_std`` site of an
        :class:`~invprior.model.InverseProblem`).

        Args:
            noise_std: Positive values broadcastable to ``(*batch, n_obs)``, e.g. shape
                ``(*batch, 1)``.

        Example:
            >>> std = torch.tensor([0.5], requires_grad=True)
            >>> GaussianLikelihood.of_value(std).log_prob(torch.zeros(3), torch.ones(3)).grad_fn
            <...>
        """
        likelihood = cls.__new__(cls)
        likelihood.noise_std = noise_std
        return likelihood

    def std(self, prediction: torch.Tensor) -> torch.Tensor:
        """Noise standard deviation on the prediction's dtype and device, broadcastable."""
        std = self._cast("noise_std", prediction)
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

    def log_prob(self, prediction: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        std = self.std(prediction).expand(prediction.shape)
        r = (obs - prediction) / std
        return -(0.5 * r.square() + std.log()).sum(-1) - 0.5 * r.shape[-1] * _LOG_2PI

    def fisher(self, prediction: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.diag_embed(self.std(prediction).expand(prediction.shape).pow(-2))

    def scale_fisher(self, prediction: torch.Tensor) -> torch.Tensor:
        r"""Fisher information :math:`2 n / \sigma^2` of one scale :math:`\sigma` of all noise.

        For :math:`y_i \sim N(F_i, \sigma^2)`, :math:`i = 1..n`, with a scalar standard
        deviation; the information between :math:`\sigma` and the prediction is zero.

        Args:
            prediction: Predicted observations, shape ``(n_obs,)``.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If the standard deviation is not one value for all observations.
        """
        std = self.std(prediction)
        if std.numel() != 1:
            raise ValueError(
                f"the Fisher information of a noise scale needs one standard deviation for all "
                f"observations, got {std.numel()} values"
            )
        return 2 * prediction.shape[-1] / std.reshape(()).square()


class CorrelatedGaussianLikelihood(Likelihood):
    r"""Correlated Gaussian noise with an offset, :math:`y \sim N(F(x) + m, \Gamma)`.

    Args:
        cov: Noise covariance :math:`\Gamma`, symmetric positive definite, shape
            ``(n_obs, n_obs)``.
        offset: Mean :math:`m` of the noise, shape ``(n_obs,)``; None means zero.
        noise_std: The measurement part of the noise, recorded with the results (scalar
            or shape ``(n_obs,)``); None means :math:`\sqrt{\mathrm{diag}\,\Gamma}`.

    Raises:
        ValueError: If ``cov`` is not a finite positive definite square matrix or
            ``offset`` does not match it.

    Example:
        >>> lik = CorrelatedGaussianLikelihood(torch.eye(3, dtype=torch.float64))
        >>> float(lik.distribution(torch.zeros(3, dtype=torch.float64)).log_prob(
        ...     torch.zeros(3, dtype=torch.float64)))  # doctest: +ELLIPSIS
        -2.756...
    """

    def __init__(
        self,
        cov: torch.Tensor,
        offset: torch.Tensor | None = None,
        noise_std: float | torch.Tensor | None = None,
    ) -> None:
        cov = torch.as_tensor(cov).detach().clone()
        if cov.dim() != 2 or cov.shape[0] != cov.shape[1] or not bool(torch.isfinite(cov).all()):
            raise ValueError(f"cov must be a finite square matrix, got shape {tuple(cov.shape)}")
        cov = 0.5 * (cov + cov.T)
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            raise ValueError("cov is not positive definite")
        n = cov.shape[0]
        offset = cov.new_zeros(n) if offset is None else torch.as_tensor(offset).to(cov)
        if offset.shape != (n,) or not bool(torch.isfinite(offset).all()):
            raise ValueError(f"offset must be {n} finite values, got shape {tuple(offset.shape)}")
        self.cov, self.scale_tril, self.offset = cov, chol, offset
        self.noise_std = cov.diagonal().sqrt() if noise_std is None else torch.as_tensor(noise_std)

    def _check(self, prediction: torch.Tensor) -> None:
        if prediction.shape[-1] != self.cov.shape[0]:
            raise ValueError(
                f"the noise covariance is {self.cov.shape[0]}x{self.cov.shape[0]} but the "
                f"forward model yields {prediction.shape[-1]} observations"
            )

    def distribution(self, prediction: torch.Tensor) -> dist.TorchDistribution:  # noqa: D102
        self._check(prediction)
        offset, tril = self._cast("offset", prediction), self._cast("scale_tril", prediction)
        return dist.MultivariateNormal(prediction + offset, scale_tril=tril)

    def log_prob(self, prediction: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self._check(prediction)
        tril = self._cast("scale_tril", prediction)
        r = (obs - prediction - self._cast("offset", prediction)).unsqueeze(-1)
        w = torch.linalg.solve_triangular(tril, r, upper=False).squeeze(-1)
        half_log_det = tril.diagonal().log().sum()
        return -0.5 * w.square().sum(-1) - half_log_det - 0.5 * w.shape[-1] * _LOG_2PI

    def fisher(self, prediction: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self._check(prediction)
        return torch.cholesky_inverse(self._cast("scale_tril", prediction))
