# SPDX-License-Identifier: MIT
r"""Curvature of the potential energy, shared by the Laplace approximation and Newton's MAP.

For an :class:`~invprior.model.InverseProblem` the Gauss-Newton Hessian at :math:`\zeta`,

.. math::

    H = J^T W J + D, \qquad J = \partial F(G(z(\zeta))) / \partial \zeta, \qquad
    D = \nabla^2_\zeta U_{prior}(\zeta) + D_\sigma,

with the likelihood's Fisher information :math:`W` (shape ``(n_obs, n_obs)``), and
:math:`D_\sigma` the expected Fisher information of the noise scale where it is a site
(:math:`(d\sigma / d\zeta_\sigma)^2\, 2 n / \sigma^2` on the diagonal entry of
:math:`\zeta_\sigma`, zero between :math:`\sigma` and the prediction). The prior part of
the potential is a sum of one-coordinate terms (the named variables are scalar sites with
independent priors; ``e_aux``, ``z_rec`` and ``eps`` are standard normal), so its Hessian
is diagonal: one Hessian-vector product with the ones vector gives it, and no
``dim x dim`` matrix is formed. Damped systems :math:`(H + \lambda I) p = r` are solved by
the Woodbury identity when ``n_obs < dim`` (an ``n_obs x n_obs`` Cholesky factorisation),

.. math::

    (\hat J^T \hat J + D_\lambda)^{-1} = D_\lambda^{-1} - D_\lambda^{-1} \hat J^T
    (I + \hat J D_\lambda^{-1} \hat J^T)^{-1} \hat J D_\lambda^{-1}, \qquad
    \hat J = R^T J, \quad W = R R^T, \quad D_\lambda = D + \lambda I,

and by a dense Cholesky factorisation otherwise.

For any other Pyro model, which exposes no forward map, the curvature is the exact Hessian
:math:`\nabla^2_\zeta U` by automatic differentiation (``dim`` Hessian-vector products): the
model must be twice differentiable in torch.

References:
    [1] T. Bui-Thanh, O. Ghattas, J. Martin, G. Stadler, "A computational framework for
        infinite-dimensional Bayesian inverse problems. Part I", SIAM J. Sci. Comput. 35
        (2013), https://doi.org/10.1137/12089586X
    [2] J. Nocedal, S. J. Wright, "Numerical Optimization", 2nd ed., Springer (2006),
        section 10.3 (Gauss-Newton, Levenberg-Marquardt),
        https://doi.org/10.1007/978-0-387-40065-5
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import torch

from ..bridge import NotTwiceDifferentiableError
from ..potential import Potential, PotentialEnergy
from ..sites import NOISE_STD

__all__ = [
    "Curvature",
    "DenseHessian",
    "GaussNewtonHessian",
    "LowRankCovarianceFactor",
    "autograd_hessian",
    "observation_jacobian",
]


def observation_jacobian(
    potential: PotentialEnergy, latent: torch.Tensor, batched: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Predicted observations and their Jacobian with respect to the unconstrained latent.

    One forward evaluation (:meth:`~invprior.potential.PotentialEnergy.predict`, the
    prediction the potential's likelihood sees), then one reverse pass per observation, or with
    ``batched`` one reverse pass of all ``n_obs`` unit cotangents at once
    (``torch.autograd.grad`` with ``is_grads_batched``): for a forward map whose
    ``batched_vjp`` is true (written in torch alone, as the dense observation map), not for
    one whose backward leaves torch (a PDE adjoint solve).

    Args:
        potential: Potential of the problem (supplies transforms and layout).
        latent: Unconstrained latent, shape ``(dim,)``.
        batched: One batched reverse pass instead of ``n_obs`` passes.

    Returns:
        ``(prediction, J)`` with shapes ``(n_obs,)`` and ``(n_obs, dim)``.
    """
    problem = potential.problem
    latent = latent.detach().clone().requires_grad_(True)
    prediction = potential.predict(potential.constrain(potential.layout.unpack(latent)))
    if batched:
        eye = torch.eye(problem.n_obs, dtype=prediction.dtype, device=prediction.device)
        (jac,) = torch.autograd.grad(prediction, latent, eye, is_grads_batched=True)
        return prediction.detach(), jac
    rows = [
        torch.autograd.grad(prediction[i], latent, retain_graph=i + 1 < problem.n_obs)[0]
        for i in range(problem.n_obs)
    ]
    return prediction.detach(), torch.stack(rows)


def _prior_diagonal(potential: PotentialEnergy, latent: torch.Tensor) -> torch.Tensor:
    """Diagonal of the (diagonal) prior Hessian at ``latent``, shape ``(dim,)``."""
    latent = latent.detach().clone().requires_grad_(True)
    energy = potential.prior_energy(potential.layout.unpack(latent))
    (grad,) = torch.autograd.grad(energy, latent, create_graph=True)
    return torch.autograd.grad(grad, latent, torch.ones_like(grad))[0].detach()


class Curvature(ABC):
    """A curvature model :math:`H` of the potential at one latent, what Newton's MAP uses.

    Attributes:
        reverse_passes: Reverse passes through the model spent building it.
        jacobian_evals: Observation Jacobians computed to build it.
    """

    reverse_passes: int
    jacobian_evals: int

    @abstractmethod
    def matvec(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`H p` for ``p`` of shape ``(dim,)``."""

    @abstractmethod
    def diagonal(self) -> torch.Tensor:
        """The diagonal of :math:`H`, shape ``(dim,)``."""

    @abstractmethod
    def solve(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        r""":math:`(H + \lambda I)^{-1} r` for ``rhs`` of shape ``(dim,)``.

        Returns None where :math:`H + \lambda I` is not positive definite.
        """


@dataclass(frozen=True)
class GaussNewtonHessian(Curvature):
    r"""The Gauss-Newton Hessian :math:`J^T W J + D` of an inverse problem at one latent.

    Attributes:
        jac: :math:`J`, shape ``(n_obs, dim)``.
        weight: :math:`W`, shape ``(n_obs, n_obs)``.
        prior_diag: Diagonal of the prior Hessian, shape ``(dim,)``.
        noise_index: Position of :math:`\zeta_\sigma` in the latent (shape ``(1,)``), or
            None for a fixed noise model.
        noise_fisher: :math:`D_\sigma` at that position, a scalar tensor, or None.
        reverse_passes: Reverse passes spent: ``n_obs`` for the Jacobian (1 when batched)
            and 2 for the prior diagonal (a gradient and a Hessian-vector product).
        jacobian_evals: 1 (one observation Jacobian).
    """

    jac: torch.Tensor
    weight: torch.Tensor
    prior_diag: torch.Tensor
    noise_index: torch.Tensor | None
    noise_fisher: torch.Tensor | None
    reverse_passes: int
    jacobian_evals: int = 1

    @classmethod
    def at(
        cls, potential: PotentialEnergy, latent: torch.Tensor, batched: bool = False
    ) -> GaussNewtonHessian:
        """The Gauss-Newton Hessian at ``latent`` (shape ``(dim,)``).

        Args:
            potential: The inverse problem's potential.
            latent: Unconstrained latent, shape ``(dim,)``.
            batched: Compute :math:`J` by one batched reverse pass
                (:func:`observation_jacobian`).
        """
        problem = potential.problem
        prediction, jac = observation_jacobian(potential, latent, batched)
        params = potential.layout.unpack(latent)
        values = potential.constrain(params)
        likelihood = problem.likelihood_of(values)
        index = fisher = None
        if problem.noise_prior is not None:
            t = potential.transforms[NOISE_STD]
            slope = t.log_abs_det_jacobian(params[NOISE_STD], values[NOISE_STD]).exp()
            index = potential.layout.positions((NOISE_STD,))
            fisher = slope.square() * likelihood.scale_fisher(prediction)
        return cls(
            jac=jac,
            weight=likelihood.fisher(prediction),
            prior_diag=_prior_diagonal(potential, latent),
            noise_index=index,
            noise_fisher=fisher,
            reverse_passes=(1 if batched else problem.n_obs) + 2,
        )

    def dense(self) -> torch.Tensor:
        """:math:`H` as a matrix, shape ``(dim, dim)``."""
        precision = self.jac.T @ self.weight @ self.jac + torch.diag(self.prior_diag)
        if self.noise_index is not None:
            precision[self.noise_index, self.noise_index] += self.noise_fisher
        return precision

    @cached_property
    def _diag_part(self) -> torch.Tensor:
        """:math:`D`, shape ``(dim,)``."""
        d = self.prior_diag.clone()
        if self.noise_index is not None:
            d[self.noise_index] += self.noise_fisher
        return d

    @cached_property
    def _jhat(self) -> torch.Tensor:
        r""":math:`\hat J = R^T J` with :math:`W = R R^T`, shape ``(n_obs, dim)``."""
        w = self.weight
        if bool((w == torch.diag(torch.diagonal(w))).all()):
            return torch.diagonal(w).sqrt().unsqueeze(-1) * self.jac
        return torch.linalg.cholesky(w).T @ self.jac

    def matvec(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`H p`, shape ``(dim,)``."""
        jhat = self._jhat
        return jhat.T @ (jhat @ p) + self._diag_part * p

    def diagonal(self) -> torch.Tensor:
        """The diagonal of :math:`H`, shape ``(dim,)``."""
        return self._jhat.square().sum(0) + self._diag_part

    def solve(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        r""":math:`(H + \lambda I)^{-1} r` for ``rhs`` of shape ``(dim,)``; None if not SPD.

        Woodbury's identity (an ``n_obs x n_obs`` factorisation) when ``n_obs < dim`` and
        :math:`D + \lambda I` is positive; a dense ``dim x dim`` factorisation otherwise.
        """
        jhat, d = self._jhat, self._diag_part + damping
        n_obs, dim = jhat.shape
        if n_obs < dim and bool((d > 0).all()):
            scaled = jhat / d
            capacitance = torch.eye(n_obs, dtype=d.dtype, device=d.device) + scaled @ jhat.T
            chol, info = torch.linalg.cholesky_ex(capacitance)
            if int(info) != 0:
                return None
            inner = torch.cholesky_solve((scaled @ rhs).unsqueeze(-1), chol).squeeze(-1)
            return rhs / d - scaled.T @ inner
        return _dense_solve(jhat.T @ jhat + torch.diag(d), rhs)

    def covariance_factor(self) -> LowRankCovarianceFactor | None:
        r"""A square root :math:`S` of :math:`H^{-1}` that costs :math:`O(\text{dim}\,n_{obs})`.

        With :math:`\tilde J = \hat J D^{-1/2} = U \operatorname{diag}(s) V^T` (thin SVD),
        :math:`H = D^{1/2}(I + \tilde J^T \tilde J) D^{1/2}`, so
        :math:`S = D^{-1/2}\big(I + V \operatorname{diag}((1 + s^2)^{-1/2} - 1) V^T\big)`
        has :math:`S S^T = H^{-1}`. None where ``n_obs >= dim`` (a dense factor is as cheap)
        or :math:`D` is not positive.
        """
        jhat, d = self._jhat, self._diag_part
        if jhat.shape[0] >= jhat.shape[1] or not bool((d > 0).all()):
            return None
        scale = d.rsqrt()
        _, s, vh = torch.linalg.svd(jhat * scale, full_matrices=False)
        return LowRankCovarianceFactor(scale, vh.T, (1 + s.square()).rsqrt() - 1)


@dataclass(frozen=True)
class LowRankCovarianceFactor:
    r"""A square root of a Gauss-Newton covariance: :math:`S = A (I + V B V^T)`.

    :math:`A = \operatorname{diag}(a)`, :math:`B = \operatorname{diag}(b)`; made by
    :meth:`GaussNewtonHessian.covariance_factor`.

    Attributes:
        scale: :math:`a`, shape ``(dim,)``.
        basis: :math:`V`, orthonormal columns, shape ``(dim, k)``.
        shrink: :math:`b`, shape ``(k,)``, entries in ``(-1, 0]``.
    """

    scale: torch.Tensor
    basis: torch.Tensor
    shrink: torch.Tensor

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`S y` for ``y`` of shape ``(*batch, dim)``."""
        return self.scale * (y + ((y @ self.basis) * self.shrink) @ self.basis.T)

    def dense(self) -> torch.Tensor:
        """:math:`S` as a matrix, shape ``(dim, dim)`` (for checks)."""
        return self(torch.eye(len(self.scale)).to(self.scale)).T


def _dense_solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor | None:
    """``matrix^{-1} rhs`` by Cholesky, shape ``(dim,)``; None if not positive definite."""
    chol, info = torch.linalg.cholesky_ex(0.5 * (matrix + matrix.T))
    if int(info) != 0:
        return None
    return torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)


@dataclass(frozen=True)
class DenseHessian(Curvature):
    """The exact Hessian of a general model's potential at one latent, as a matrix.

    Attributes:
        matrix: The Hessian, shape ``(dim, dim)``.
        reverse_passes: ``dim + 1``: a gradient and ``dim`` Hessian-vector products.
        jacobian_evals: 0 (no observation Jacobian).
    """

    matrix: torch.Tensor
    reverse_passes: int
    jacobian_evals: int = 0

    def matvec(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`H p`, shape ``(dim,)``."""
        return self.matrix @ p

    def diagonal(self) -> torch.Tensor:
        """The diagonal of :math:`H`, shape ``(dim,)``."""
        return torch.diagonal(self.matrix)

    def solve(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        r""":math:`(H + \lambda I)^{-1} r` for ``rhs`` of shape ``(dim,)``; None if not SPD."""
        eye = torch.eye(len(rhs), dtype=rhs.dtype, device=rhs.device)
        return _dense_solve(self.matrix + damping * eye, rhs)


def autograd_hessian(potential: Potential, latent: torch.Tensor) -> DenseHessian:
    """Exact Hessian of a general model's potential at ``latent`` (shape ``(dim,)``).

    Raises:
        ValueError: The model is not twice differentiable in torch (a PDE solve through
            :class:`invprior.bridge.PDEFunction` inside a hand-written model).
    """
    try:
        matrix = torch.autograd.functional.hessian(potential.flat, latent)
    except NotTwiceDifferentiableError as err:
        raise ValueError(
            "the model is not twice differentiable: its PDE solve (invprior.bridge) has no "
            "second derivative; write it as an InverseProblem (Gauss-Newton Hessian), or "
            "sample with init_mass='identity'"
        ) from err
    return DenseHessian(matrix=matrix, reverse_passes=len(latent) + 1)
