# SPDX-License-Identifier: MIT
"""The potential energy by tracing the Pyro model, the reference the library's is tested on."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pyro import poutine

from invprior.potential import PotentialEnergy


def traced_energy(
    potential: PotentialEnergy, params: Mapping[str, torch.Tensor], likelihood: bool = True
) -> torch.Tensor:
    r""":math:`U(\zeta)` of ``potential`` through ``poutine.trace`` of ``problem.model``.

    The log density of the trace conditioned on the constrained values (of the prior alone
    without ``likelihood``) plus the log-Jacobians of ``potential.transforms``: what Pyro's
    ``initialize_model`` computes with those transforms.

    Args:
        potential: Supplies the problem, the data and the transforms.
        params: Unconstrained value of every latent site, shapes ``event_shape``.
        likelihood: Include the observation site.

    Returns:
        The energy, a scalar tensor.
    """
    problem = potential.problem
    values = potential.constrain(params)
    fn, args = (problem.model, (potential.obs,)) if likelihood else (problem.prior, ())
    log_joint = poutine.trace(poutine.condition(fn, data=values)).get_trace(*args).log_prob_sum()
    for name, t in potential.transforms.items():
        log_joint = log_joint + t.log_abs_det_jacobian(params[name], values[name]).sum()
    return -log_joint


def traced_flat(potential: PotentialEnergy, latent: torch.Tensor, likelihood: bool = True):
    """:func:`traced_energy` of a flat unconstrained latent, shape ``(dim,)``."""
    return traced_energy(potential, potential.layout.unpack(latent), likelihood)
