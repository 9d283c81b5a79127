# SPDX-License-Identifier: MIT
r"""Boundary data and coefficients for the forward models.

A *marker* selects boundary facets: ``None`` (the whole boundary), an ``int`` (a tag of
the problem's ``facet_tags``) or a predicate on coordinates of shape ``(3, n)`` returning a
boolean mask. A *value* is a float, a callable of coordinates (interpolated into the state
space), a :class:`dolfinx.fem.Function` or, for Neumann data and coefficients, any UFL
expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from petsc4py import PETSc

import dolfinx.fem
import dolfinx.mesh
import numpy as np
import ufl

__all__ = ["Marker", "Value", "as_coefficient", "dirichlet_bcs", "neumann_form"]

Marker = int | Callable[[np.ndarray], np.ndarray] | None
Value = float | Callable[[np.ndarray], np.ndarray] | dolfinx.fem.Function | ufl.core.expr.Expr


def as_coefficient(V: dolfinx.fem.FunctionSpace, value: Value, name: str) -> ufl.core.expr.Expr:
    """A UFL coefficient from a float, a callable (interpolated into ``V``) or UFL.

    Args:
        V: Space a callable is interpolated into.
        value: The value.
        name: Argument name used in the error message.

    Returns:
        A :class:`dolfinx.fem.Constant`, a :class:`dolfinx.fem.Function` or ``value``.

    Raises:
        TypeError: For any other type.
    """
    if isinstance(value, int | float | np.floating | np.integer):
        return dolfinx.fem.Constant(V.mesh, PETSc.ScalarType(value))
    if isinstance(value, ufl.core.expr.Expr):
        return value
    if callable(value):
        fn = dolfinx.fem.Function(V)
        fn.interpolate(value)
        return fn
    raise TypeError(
        f"{name} must be a float, a callable of coordinates (3, n) -> (n,) or a UFL "
        f"expression, got {type(value).__name__}"
    )


def _facets(
    mesh: dolfinx.mesh.Mesh, marker: Marker, facet_tags: dolfinx.mesh.MeshTags | None
) -> np.ndarray:
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    if marker is None:
        return dolfinx.mesh.exterior_facet_indices(mesh.topology)
    if isinstance(marker, int | np.integer):
        if facet_tags is None:
            raise ValueError(
                f"boundary marker {marker} is a tag, but no facet_tags were given; pass "
                "facet_tags (e.g. from tag_boundaries or read_mesh) or a predicate"
            )
        return facet_tags.find(int(marker))
    if callable(marker):
        return dolfinx.mesh.locate_entities_boundary(mesh, fdim, marker)
    raise TypeError(
        f"a boundary marker must be None, an int tag or a predicate, got {type(marker).__name__}"
    )


def dirichlet_bcs(
    V: dolfinx.fem.FunctionSpace,
    dirichlet: Sequence[tuple[Marker, Value]],
    facet_tags: dolfinx.mesh.MeshTags | None,
) -> list[dolfinx.fem.DirichletBC]:
    """Dirichlet conditions :math:`u = g` on marked boundary parts.

    Collective on ``V.mesh.comm``.

    Args:
        V: State space.
        dirichlet: ``(marker, g)`` pairs; ``g`` is a float, a callable or a Function of
            ``V``.
        facet_tags: Facet tags for integer markers.

    Returns:
        The conditions.

    Raises:
        ValueError: If no dof of the mesh is constrained (the problem would be singular).
    """
    mesh, fdim = V.mesh, V.mesh.topology.dim - 1
    bcs = []
    for marker, value in dirichlet:
        dofs = dolfinx.fem.locate_dofs_topological(V, fdim, _facets(mesh, marker, facet_tags))
        if isinstance(value, int | float | np.floating | np.integer):
            bcs.append(dolfinx.fem.dirichletbc(PETSc.ScalarType(value), dofs, V))
        else:
            g = value if isinstance(value, dolfinx.fem.Function) else as_coefficient(V, value, "g")
            if not isinstance(g, dolfinx.fem.Function):
                raise TypeError("Dirichlet values must be a float, a callable or a Function")
            bcs.append(dolfinx.fem.dirichletbc(g, dofs))
    n_owned = V.dofmap.index_map.size_local
    local = sum(int(np.count_nonzero(bc.dof_indices()[0] < n_owned)) for bc in bcs)
    if V.mesh.comm.allreduce(local) == 0:
        raise ValueError(
            "no degree of freedom carries a Dirichlet condition, so the operator is singular; "
            "give at least one Dirichlet boundary part (dirichlet=[(marker, value), ...])"
        )
    return bcs


def neumann_form(
    V: dolfinx.fem.FunctionSpace,
    neumann: Sequence[tuple[Marker, Value]],
    facet_tags: dolfinx.mesh.MeshTags | None,
) -> ufl.Form | None:
    r"""The boundary term :math:`\sum_k \int_{\Gamma_k} g_k v \, ds`.

    Args:
        V: State space (of the test function ``v``).
        neumann: ``(marker, g)`` pairs with the flux :math:`g = \kappa \nabla u \cdot n`.
        facet_tags: Facet tags for integer markers.

    Returns:
        The linear form, or ``None`` when ``neumann`` is empty.
    """
    mesh, fdim = V.mesh, V.mesh.topology.dim - 1
    v = ufl.TestFunction(V)
    terms = []
    for marker, value in neumann:
        g = as_coefficient(V, value, "Neumann value")
        if marker is None:
            terms.append(g * v * ufl.ds)
            continue
        facets = _facets(mesh, marker, facet_tags)
        ones = np.ones(facets.size, dtype=np.int32)
        tags = dolfinx.mesh.meshtags(mesh, fdim, np.sort(facets).astype(np.int32), ones)
        terms.append(g * v * ufl.Measure("ds", domain=mesh, subdomain_data=tags)(1))
    return sum(terms[1:], terms[0]) if terms else None
