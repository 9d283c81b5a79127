# SPDX-License-Identifier: MIT
r"""Residual forms for :mod:`invprior.pde.variational`: a small catalogue, and their checks.

The catalogue holds residuals :math:`F(u, m; v)` ready for
:class:`~invprior.pde.VariationalProblem`: the two built-in models' forms
(:func:`source_form`, :func:`conductivity_form`) and three physics they do not cover
(:func:`advection_diffusion_form`, :func:`nonlinear_conductivity_form`,
:func:`reaction_form`); :data:`EXAMPLES` pairs each with boundary data. The checks and
rewrites: facet tags that mark no facet, one quadrature rule for a form and everything
derived from it, and whether a form depends on a coefficient once its derivatives are
expanded.

Example:
    >>> from mpi4py import MPI
    >>> from invprior.pde import VariationalProblem, unit_square
    >>> from invprior.pde.forms import EXAMPLES
    >>> form, boundary = EXAMPLES["robin"]  # reaction, Robin data, no Dirichlet part
    >>> problem = VariationalProblem(
    ...     unit_square(MPI.COMM_WORLD, 8), form, [[0.5, 0.5]], (9, 9), **boundary)
    >>> problem.linear, problem.symmetric, problem.affine
    (True, True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from mpi4py import MPI

import dolfinx.fem
import dolfinx.mesh
import numpy as np
import ufl
from ufl.algorithms import estimate_total_polynomial_degree, expand_derivatives

from .boundary import Marker

__all__ = [
    "EXAMPLES",
    "Residual",
    "advection_diffusion_form",
    "check_form_tags",
    "check_tags",
    "conductivity_form",
    "depends",
    "nonlinear_conductivity_form",
    "reaction_form",
    "source_form",
    "uniform_degree",
]

#: ``residual(u, m, v) -> ufl.Form``: state, P1 parameter and test function to the residual.
Residual = Callable[[dolfinx.fem.Function, dolfinx.fem.Function, ufl.Argument], ufl.Form]
Coefficient = float | ufl.core.expr.Expr


def source_form(kappa: Coefficient = 1.0) -> Residual:
    r"""The source problem's residual: :math:`-\nabla\cdot(\kappa \nabla u) = m`.

    .. math::

        F(u, m; v) = \int_\Omega \kappa \nabla u \cdot \nabla v - m v \, dx

    Linear in :math:`u`, symmetric, fixed operator, affine in :math:`m`: with the same
    mesh, sensors, boundary data and ``kappa`` it gives :class:`~invprior.pde.SourceProblem`'s
    observations and gradients.

    Args:
        kappa: Conductivity, a float or a UFL expression.
    """

    def residual(u, m, v):
        return (kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) - m * v) * ufl.dx

    return residual


def conductivity_form(source: Coefficient = 1.0) -> Residual:
    r"""The conductivity problem's residual: :math:`-\nabla\cdot(e^m \nabla u) = f`.

    .. math::

        F(u, m; v) = \int_\Omega e^m \nabla u \cdot \nabla v \, dx
        - \int_\Omega f v \, dx

    The diffusion term uses :class:`~invprior.pde.ConductivityProblem`'s quadrature degree
    :math:`2p + 2` for a state of degree :math:`p`, so with the same mesh, sensors,
    boundary data and ``source`` the two give the same observations and gradients.

    Args:
        source: Right-hand side :math:`f`, a float or a UFL expression.
    """

    def residual(u, m, v):
        degree = u.function_space.element.basix_element.degree
        dx = ufl.dx(metadata={"quadrature_degree": 2 * degree + 2})
        return ufl.exp(m) * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx - source * v * ufl.dx

    return residual


def advection_diffusion_form(
    wind: Sequence[float] = (3.0, 1.0), source: Coefficient = 1.0
) -> Residual:
    r"""Advection-diffusion with a log-diffusivity :math:`m` and a constant wind :math:`w`.

    .. math::

        F(u, m; v) = \int_\Omega e^m \nabla u \cdot \nabla v
        + (w \cdot \nabla u) v \, dx - \int_\Omega f v \, dx

    i.e. :math:`-\nabla\cdot(e^m \nabla u) + w \cdot \nabla u = f`. Linear in :math:`u`;
    the operator is not symmetric for a non-zero wind and depends on :math:`m`.

    Args:
        wind: Constant wind :math:`w`, one component per dimension.
        source: Right-hand side :math:`f`, a float or a UFL expression.
    """

    def residual(u, m, v):
        w = ufl.as_vector(wind)
        return (
            ufl.exp(m) * ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.dot(w, ufl.grad(u)) * v
        ) * ufl.dx - source * v * ufl.dx

    return residual


def nonlinear_conductivity_form(source: Coefficient = 10.0) -> Residual:
    r"""A conductivity that grows with the state, :math:`\kappa(u, m) = (1 + u^2) e^m`.

    .. math::

        F(u, m; v) = \int_\Omega (1 + u^2) e^m \nabla u \cdot \nabla v - f v \, dx

    i.e. :math:`-\nabla\cdot((1 + u^2) e^m \nabla u) = f`. Nonlinear in :math:`u`
    (Newton's method); its Jacobian is not symmetric.

    Args:
        source: Right-hand side :math:`f`, a float or a UFL expression.
    """

    def residual(u, m, v):
        kappa = (1 + u**2) * ufl.exp(m)
        return (kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) - source * v) * ufl.dx

    return residual


def reaction_form(rate: Coefficient = 2.0, source: Coefficient = 1.0) -> Residual:
    r"""Diffusion with a linear reaction: :math:`-\nabla\cdot(e^m \nabla u) + c u = f`.

    .. math::

        F(u, m; v) = \int_\Omega e^m \nabla u \cdot \nabla v + c u v - f v \, dx

    With a positive rate :math:`c` (or Robin data) the operator is regular without any
    Dirichlet part; symmetric, linear in :math:`u`, depends on :math:`m`.

    Args:
        rate: Reaction rate :math:`c`, a float or a UFL expression.
        source: Right-hand side :math:`f`, a float or a UFL expression.
    """

    def residual(u, m, v):
        diffusion = ufl.exp(m) * ufl.inner(ufl.grad(u), ufl.grad(v))
        return (diffusion + rate * u * v - source * v) * ufl.dx

    return residual


#: The catalogue's cases by name: ``(residual, keyword arguments of VariationalProblem)``,
#: the keywords giving the boundary data (default: ``u = 0`` on the whole boundary).
#: ``"robin"`` is the reaction form with the Robin condition :math:`e^m \nabla u \cdot n
#: = 3 (0 - u)` on the whole boundary and no Dirichlet part.
EXAMPLES: Mapping[str, tuple[Residual, Mapping[str, object]]] = MappingProxyType(
    {
        "source": (source_form(), MappingProxyType({})),
        "conductivity": (conductivity_form(), MappingProxyType({})),
        "advection_diffusion": (advection_diffusion_form(), MappingProxyType({})),
        "nonlinear": (nonlinear_conductivity_form(), MappingProxyType({})),
        "robin": (
            reaction_form(),
            MappingProxyType({"dirichlet": (), "robin": ((None, 3.0, 0.0),)}),
        ),
    }
)


def _tag_values(tags: dolfinx.mesh.MeshTags, comm: MPI.Comm) -> set[int]:
    """The tag values present on any rank."""
    return {int(t) for part in comm.allgather(np.unique(tags.values)) for t in part}


def check_tags(
    markers: Sequence[Marker], facet_tags: dolfinx.mesh.MeshTags | None, comm: MPI.Comm
) -> None:
    """Raise ValueError for an integer marker that tags no facet of ``facet_tags``.

    Collective on ``comm``.
    """
    wanted = sorted({int(k) for k in markers if isinstance(k, int | np.integer)})
    if not wanted or facet_tags is None:
        return  # no tags, or dirichlet_bcs / neumann_form ask for facet_tags themselves
    known = _tag_values(facet_tags, comm)
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise ValueError(
            f"boundary tag(s) {unknown} mark no facet; facet_tags holds {sorted(known)}. "
            "Use one of those tags or tag the facets (tag_boundaries)"
        )


def check_form_tags(form: ufl.Form, comm: MPI.Comm) -> None:
    """Raise ValueError for a ``ds(k)`` / ``dS(k)`` whose tag ``k`` marks no facet.

    Collective on ``comm``.
    """
    for itg in form.integrals():
        if itg.integral_type() not in ("exterior_facet", "interior_facet"):
            continue
        ids = itg.subdomain_id()
        ids = ids if isinstance(ids, tuple) else (ids,)
        ids = [int(k) for k in ids if isinstance(k, int | np.integer)]
        if not ids:
            continue
        data = itg.subdomain_data()
        if not isinstance(data, dolfinx.mesh.MeshTags):
            raise ValueError(
                f"the residual integrates over facet tag(s) {ids} but its measure has no "
                "facet tags; write ds = ufl.Measure('ds', domain=mesh, subdomain_data=tags)"
            )
        check_tags(ids, data, comm)


def uniform_degree(form: ufl.Form) -> ufl.Form:
    """``form`` with each integral's estimated quadrature degree fixed in its metadata.

    Derived forms (Jacobian, adjoint, parameter derivative) inherit the metadata, so every
    form uses the residual's rule and the gradient is the exact derivative of the discrete
    forward map.
    """
    integrals = []
    for itg in form.integrals():
        md = dict(itg.metadata())
        if md.get("quadrature_degree", -1) in (-1, None):
            md["quadrature_degree"] = estimate_total_polynomial_degree(itg.integrand())
        integrals.append(itg.reconstruct(metadata=md))
    return ufl.Form(integrals)


def depends(form: ufl.Form, f: dolfinx.fem.Function) -> bool:
    """Whether ``f`` is a coefficient of ``form`` once its derivatives are expanded."""
    return f in expand_derivatives(form).coefficients()
