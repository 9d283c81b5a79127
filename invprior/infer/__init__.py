# SPDX-License-Identifier: MIT
"""MAP, Laplace, HMC, NUTS and batched ChEES-HMC for inverse problems and other Pyro models.

Every routine takes an inverse problem (its potential evaluated without tracing,
Gauss-Newton Laplace) or any Pyro model whose latent sites are continuous, called as
``model(obs)`` (its potential traced, Laplace by the autograd Hessian); both get the
multi-start MAP, the probit map of ``Uniform`` sites and the dense-mass initialisation.
An inverse problem with an unknown noise scale is
``InverseProblem(prior, forward, noise=pyro.distributions.HalfNormal(0.1))``.

Example:
    An unknown noise scale in a hand-written model:

    >>> import pyro, pyro.distributions as dist, torch
    >>> def model(obs):
    ...     sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    ...     with pyro.plate("data", len(obs)):
    ...         pyro.sample("y", dist.Normal(0.0, sigma), obs=obs)
    >>> obs = 0.5 * torch.randn(200, generator=torch.Generator().manual_seed(0))
    >>> round(float(find_map(model, obs, num_restarts=1).sites["sigma"]), 2)
    0.48

``map`` is :func:`find_map` under its short public name (``invprior.infer.map``); inside
this package the function is always called ``find_map``, so the builtin ``map`` is never
shadowed in module code.
"""

from .chees import chees
from .laplace_approximation import LaplaceResult, laplace, observation_jacobian
from .map_estimate import MapConfig, MapResult, find_map
from .mcmc import MCMCConfig, MCMCResult, hmc, nuts

map = find_map  # noqa: A001

#: The sampler of each kernel name (the study's ``[mcmc] kernel``).
SAMPLERS = {"nuts": nuts, "hmc": hmc, "chees": chees}

__all__ = [
    "LaplaceResult",
    "MCMCConfig",
    "MCMCResult",
    "MapConfig",
    "MapResult",
    "SAMPLERS",
    "chees",
    "find_map",
    "hmc",
    "laplace",
    "map",
    "nuts",
    "observation_jacobian",
]
