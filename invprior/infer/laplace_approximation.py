# SPDX-License-Identifier: MIT
r"""Laplace approximation in the unconstrained latent space.

For an :class:`~invprior.model.InverseProblem` the Hessian is Gauss-Newton's. At the MAP
:math:`\hat\zeta`, with :math:`J = \partial F(G(z(\zeta))) / \partial \zeta` (shape
``(n_obs, dim)``), the likelihood's Fisher information :math:`W` (for Gaussian noise
:math:`W = \Gamma^{-1}`) and the exact Hessian of the prior part of the potential,

.. math::

    H = J^T W J + \nabla^2_\zeta U_{prior}(\hat\zeta), \qquad
    p(\zeta \mid y) \approx N(\hat\zeta, H^{-1}).

:math:`J` takes one forward solve and ``n_obs`` reverse passes (one adjoint solve each);
the prior Hessian needs no solve. For a linear generator, a linear forward map, Gaussian
noise and Gaussian priors the approximation is the exact posterior. Where the noise scale
is a site, :math:`\sigma = T(\zeta_\sigma)`, its expected Fisher information
:math:`2 n / \sigma^2` (zero between :math:`\sigma` and the prediction) adds
:math:`(d\sigma / d\zeta_\sigma)^2\, 2 n / \sigma^2` to the diagonal entry of
:math:`\zeta_\sigma`.

The Hessian is built by :mod:`invprior.infer.hessian`, the same code Newton's MAP
(:func:`invprior.infer.map` with ``optimizer="newton"``) steps with. For any other Pyro
model, which exposes no forward map, :math:`H` is the exact Hessian
:math:`\nabla^2_\zeta U(\hat\zeta)` by automatic differentiation: the model must be
twice differentiable in torch (a PDE bridge is not; write such a model as an inverse
problem).

References:
    [1] T. Bui-Thanh, O. Ghattas, J. Martin, G. Stadler, "A computational framework for
        infinite-dimensional Bayesian inverse problems. Part I", SIAM J. Sci. Comput. 35
        (2013), https://doi.org/10.1137/12089586X
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..model import InverseProblem
from ..potential import Potential, PotentialEnergy, potential_energy
from .common import seeded, solve_counts, solves_since
from .hessian import GaussNewtonHessian, autograd_hessian, observation_jacobian
from .map_estimate import MapResult

__all__ = ["LaplaceResult", "laplace", "observation_jacobian"]


@dataclass(frozen=True)
class LaplaceResult:
    r"""A Gaussian :math:`N(\text{mean}, \text{cov})` over the unconstrained latent.

    Attributes:
        mean: The MAP latent, shape ``(dim,)``.
        cov: Covariance :math:`H^{-1}`, shape ``(dim, dim)``.
        precision: The Hessian :math:`H` (Gauss-Newton's for an inverse problem), shape
            ``(dim, dim)``.
        potential: The potential it approximates (transforms, layout, model).
        pde_solves: Solves used to build the Jacobian, or None for a model that is not an
            inverse problem.
    """

    mean: torch.Tensor
    cov: torch.Tensor
    precision: torch.Tensor
    potential: Potential = field(repr=False)
    pde_solves: dict[str, int] | None

    def sample(self, num_samples: int, seed: int = 0) -> dict[str, torch.Tensor]:
        """Draws mapped to every latent and deterministic site (``Potential.sites``).

        Args:
            num_samples: Number of draws.
            seed: Seed of the draws.

        Returns:
            Site values, shapes ``(num_samples, *event_shape)``; for an inverse problem no
            forward solve is done, for another model one model run per draw.
        """
        with seeded(seed, self.mean.device):
            latent = torch.distributions.MultivariateNormal(self.mean, self.cov).sample(
                (num_samples,)
            )
        layout = self.potential.layout
        with torch.no_grad():
            values = self.potential.constrain(layout.unpack(latent))
            return self.potential.sites(values)


def laplace(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    map_result: MapResult | torch.Tensor,
) -> LaplaceResult:
    r"""Laplace approximation around a MAP estimate (Gauss-Newton for an inverse problem).

    Args:
        problem: The inverse problem, or any Pyro model whose latent sites are continuous,
            called as ``problem(obs)``, twice differentiable in torch.
        obs: Observed data, shape ``(n_obs,)`` for an inverse problem.
        map_result: Result of :func:`invprior.infer.map` for the same problem and data, or
            an unconstrained latent of shape ``(dim,)`` to expand around.

    Returns:
        The :class:`LaplaceResult`.

    Raises:
        ValueError: If the MAP latent does not fit the problem or the Hessian is not
            positive definite.
    """
    potential = potential_energy(problem, obs)
    latent = map_result.latent if isinstance(map_result, MapResult) else map_result
    mean = torch.as_tensor(latent).detach().to(potential.obs)
    if mean.shape != (potential.layout.dim,):
        raise ValueError(
            f"map_result.latent has shape {tuple(mean.shape)} but the problem has "
            f"{potential.layout.dim} latent coordinates; pass the MAP of this problem"
        )
    before = solve_counts(potential.forward)
    if isinstance(potential, PotentialEnergy):
        # J by one reverse pass per observation even where the forward map's batched_vjp
        # allows one batched pass: that pass rounds differently, which in float32 moves the
        # covariance beyond round-off, and the documented results are computed row by row
        precision = GaussNewtonHessian.at(potential, mean).dense()
        name = "Gauss-Newton Hessian"
    else:
        precision, name = autograd_hessian(potential, mean).matrix, "Hessian of the potential"
    precision = 0.5 * (precision + precision.T)
    chol, info = torch.linalg.cholesky_ex(precision)
    if int(info) != 0:
        raise ValueError(
            f"the {name} is not positive definite at map_result.latent; the prior Hessian "
            f"is indefinite there (e.g. a non-log-concave prior) or the point is no mode"
        )
    return LaplaceResult(
        mean=mean,
        cov=torch.cholesky_inverse(chol),
        precision=precision,
        potential=potential,
        pde_solves=solves_since(before, potential.forward),
    )
