# SPDX-License-Identifier: MIT
"""Checks and rewrites of the UFL residual forms of :mod:`invprior.pde.variational`.

Facet tags that mark no facet, one quadrature rule for a form and everything derived from
it, and whether a form depends on a coefficient once its derivatives are expanded.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpi4py import MPI

import dolfinx.fem
import dolfinx.mesh
import numpy as np
import ufl
from ufl.algorithms import estimate_total_polynomial_degree, expand_derivatives

from .boundary import Marker

__all__ = ["check_form_tags", "check_tags", "depends", "uniform_degree"]


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
