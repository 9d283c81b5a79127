# SPDX-License-Identifier: MIT
"""The physics of the own-problem example: a contaminant carried along a channel.

``invprior run study.toml`` loads :func:`residual` (``[pde] form``) and builds an
:class:`invprior.pde.VariationalProblem` from it: the residual of the weak form of
:math:`-\\nabla\\cdot(\\kappa \\nabla u) + w\\cdot\\nabla u = m`, with :math:`m` the
release rate (the generator's field) and :math:`u` the concentration. The boundary data
are in ``study.toml`` (``[pde.dirichlet]``, ``[pde.robin]``) on the facet tags of
``domain.xdmf``; untagged and tag-3 walls are natural (no diffusive flux).
"""

import ufl

KAPPA = 0.1  # diffusivity
WIND = (2.0, 0.0)  # the current, along +x


def residual(u, m, v):
    """``F(u, m; v)`` of steady advection-diffusion with source ``m``."""
    w = ufl.as_vector(WIND)
    return (
        KAPPA * ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.dot(w, ufl.grad(u)) * v - m * v
    ) * ufl.dx
