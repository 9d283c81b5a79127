# SPDX-License-Identifier: MIT
"""Inference for :class:`invprior.model.InverseProblem`: MAP, Laplace, HMC and NUTS.

``map`` is :func:`find_map` under its short public name (``invprior.infer.map``); inside
this package the function is always called ``find_map``, so the builtin ``map`` is never
shadowed in module code.
"""

from .gaussian import LaplaceResult, laplace, observation_jacobian
from .mcmc import MCMCConfig, MCMCResult, hmc, nuts
from .mode import MapConfig, MapResult, find_map

map = find_map  # noqa: A001

__all__ = [
    "LaplaceResult",
    "MCMCConfig",
    "MCMCResult",
    "MapConfig",
    "MapResult",
    "find_map",
    "hmc",
    "laplace",
    "map",
    "nuts",
    "observation_jacobian",
]
