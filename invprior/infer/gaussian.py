# SPDX-License-Identifier: MIT
r"""Laplace approximation with a Gauss-Newton Hessian in the unconstrained latent space.

At the MAP :math:`\hat\zeta`, with :math:`J = \partial F(G(z(\zeta))) / \partial \zeta`
(shape ``(n_obs, dim)``), the likelihood's Fisher information :math:`W` (for Gaussian noise
:math:`W = \Gamma^{-1}`) and the exact Hessian of the prior part of the potential,

.. math::

    H = J^T W J + \nabla^2_\zeta U_{prior}(\hat\zeta), \qquad
    p(\zeta \mid y) \approx N(\hat\zeta, H^{-1}).

:math:`J` takes one forward solve and ``n_obs`` reverse passes (one adjoint solve each);
the prior Hessian needs no solve. For a linear generator, a linear forward map, Gaussian
noise and Gaussian priors the approximation is the exact posterior.

References:
    [1] T. Bui-Thanh, O. Ghattas, J. Martin, G. Stadler, "A computational framework for
        infinite-dimensional Bayesian inverse problems. Part I", SIAM J. Sci. Comput. 35
        (2013), https://doi.org/10.1137/12089586X
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model import InverseProblem
from ..potential import PotentialEnergy
from ..sites import FIELD
from .common import seeded, solve_counts, solves_since
from .mode import MapResult

__all__ = ["LaplaceResult", "laplace", "observation_jacobian"]


def observation_jacobian(
    potential: PotentialEnergy, latent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Predicted observations and their Jacobian with respect to the unconstrained latent.

    Args:
        potential: Potential of the problem (supplies transforms and layout).
        latent: Unconstrained latent, shape ``(dim,)``.

    Returns:
        ``(prediction, J)`` with shapes ``(n_obs,)`` and ``(n_obs, dim)``.
    """
    problem = potential.problem
    latent = latent.detach().clone().requires_grad_(True)
    values = potential.constrain(potential.layout.unpack(latent))
    prediction = problem.forward(problem.prior.complete(values)[FIELD])
    rows = [
        torch.autograd.grad(prediction[i], latent, retain_graph=i + 1 < problem.n_obs)[0]
        for i in range(problem.n_obs)
    ]
    return prediction.detach(), torch.stack(rows)


@dataclass(frozen=True)
class LaplaceResult:
    r"""A Gaussian :math:`N(\text{mean}, \text{cov})` over the unconstrained latent.

    Attributes:
        mean: The MAP latent, shape ``(dim,)``.
        cov: Covariance :math:`H^{-1}`, shape ``(dim, dim)``.
        precision: The Gauss-Newton Hessian :math:`H`, shape ``(dim, dim)``.
        potential: The potential it approximates (transforms, layout, problem).
        pde_solves: Solves used to build the Jacobian, or None without a counter.
    """

    mean: torch.Tensor
    cov: torch.Tensor
    precision: torch.Tensor
    potential: PotentialEnergy = field(repr=False)
    pde_solves: dict[str, int] | None

    def sample(self, num_samples: int, seed: int = 0) -> dict[str, torch.Tensor]:
        """Draws mapped to every prior site (physical units, ``z_aux``, ``field``).

        Args:
            num_samples: Number of draws.
            seed: Seed of the draws.

        Returns:
            Site values, shapes ``(num_samples, *event_shape)``; no forward solve is done.
        """
        with seeded(seed, self.mean.device):
            latent = torch.distributions.MultivariateNormal(self.mean, self.cov).sample(
                (num_samples,)
            )
        layout = self.potential.layout
        with torch.no_grad():
            values = self.potential.constrain(layout.unpack(latent))
            return self.potential.problem.prior.complete(values)


def laplace(
    problem: InverseProblem, obs: torch.Tensor, map_result: MapResult | torch.Tensor
) -> LaplaceResult:
    r"""Gauss-Newton Laplace approximation around a MAP estimate.

    Args:
        problem: The inverse problem.
        obs: Observed data, shape ``(n_obs,)``.
        map_result: Result of :func:`invprior.infer.map` for the same problem and data, or
            an unconstrained latent of shape ``(dim,)`` to expand around.

    Returns:
        The :class:`LaplaceResult`.

    Raises:
        ValueError: If the MAP latent does not fit the problem or the Hessian is not
            positive definite.
    """
    potential = PotentialEnergy(problem, obs)
    latent = map_result.latent if isinstance(map_result, MapResult) else map_result
    mean = torch.as_tensor(latent).detach().to(potential.obs)
    if mean.shape != (potential.layout.dim,):
        raise ValueError(
            f"map_result.latent has shape {tuple(mean.shape)} but the problem has "
            f"{potential.layout.dim} latent coordinates; pass the MAP of this problem"
        )
    before = solve_counts(problem.forward)
    prediction, jac = observation_jacobian(potential, mean)
    weight = problem.likelihood.fisher(prediction)
    prior_hessian = torch.autograd.functional.hessian(
        lambda z: potential.prior_energy(potential.layout.unpack(z)), mean
    )
    precision = jac.T @ weight @ jac + prior_hessian
    precision = 0.5 * (precision + precision.T)
    chol, info = torch.linalg.cholesky_ex(precision)
    if int(info) != 0:
        raise ValueError(
            "the Gauss-Newton Hessian is not positive definite at map_result.latent; the "
            "prior Hessian is indefinite there (e.g. a non-log-concave named prior)"
        )
    return LaplaceResult(
        mean=mean,
        cov=torch.cholesky_inverse(chol),
        precision=precision,
        potential=potential,
        pde_solves=solves_since(before, problem.forward),
    )
