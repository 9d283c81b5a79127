# SPDX-License-Identifier: MIT
"""The few DOLFINx spellings that differ between 0.10 and 0.11, and the scalar-type check.

Everything else in :mod:`invprior.pde` uses the API common to both versions. The import of
``dolfinx_solver`` (the PyPI wheel's bootstrap, which orders ``mpi4py`` ahead of the PETSc
and DOLFINx bindings) happens in the package's ``__init__``, before this module loads.
"""

from __future__ import annotations

from petsc4py import PETSc

import dolfinx
import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.la.petsc
import dolfinx.mesh
import numpy as np

__all__ = [
    "DOLFINX_VERSION",
    "ComplexPETScError",
    "create_vector",
    "geometry_maps",
    "require_real_petsc",
]

DOLFINX_VERSION: tuple[int, int] = tuple(int(p) for p in dolfinx.__version__.split(".")[:2])


class ComplexPETScError(ImportError):
    """PETSc was built with complex scalars; the forward models need real float64."""


def require_real_petsc() -> None:
    """Reject a PETSc built with complex or single-precision scalars.

    Raises:
        ComplexPETScError: If ``PETSc.ScalarType`` is not ``float64``.
    """
    scalar = np.dtype(PETSc.ScalarType)
    if scalar != np.float64:
        raise ComplexPETScError(
            f"invprior.pde needs a real float64 PETSc, but this PETSc uses {scalar}. "
            "Install the real build (pip install dolfinx-solver-real, or conda-forge "
            "petsc=*=real_*) instead of the complex one."
        )


def create_vector(V: dolfinx.fem.FunctionSpace) -> PETSc.Vec:
    """A ghosted PETSc vector with the layout of ``V`` (not initialised to zero).

    DOLFINx 0.11 builds it from the space; 0.10 from a linear form or an index map.

    Args:
        V: Function space.

    Returns:
        The vector; the caller destroys it.
    """
    if DOLFINX_VERSION >= (0, 11):
        return dolfinx.fem.petsc.create_vector(V)
    return dolfinx.la.petsc.create_vector(V.dofmap.index_map, V.dofmap.index_map_bs)


def geometry_maps(
    mesh: dolfinx.mesh.Mesh,
) -> tuple[np.ndarray, dolfinx.fem.CoordinateElement]:
    """The geometry dofmap, shape ``(num_cells, nodes_per_cell)``, and the coordinate element.

    DOLFINx 0.11 lists one of each per cell type (``dofmaps``, ``cmaps``) and deprecates the
    single ``dofmap`` and ``cmap`` of 0.10.

    Args:
        mesh: A mesh with one cell type.

    Returns:
        ``(dofmap, cmap)``.
    """
    geometry = mesh.geometry
    if DOLFINX_VERSION >= (0, 11):
        return geometry.dofmaps[0], geometry.cmaps[0]
    return geometry.dofmap, geometry.cmap


require_real_petsc()
