# SPDX-License-Identifier: MIT
"""Meshes for the forward models: structured rectangles, files, boundary tags.

All functions are collective on ``comm`` (or on the mesh's communicator).
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mpi4py import MPI

import dolfinx.io
import dolfinx.mesh
import numpy as np

from . import compat  # noqa: F401  (rejects a complex PETSc before any mesh is built)

__all__ = ["LoadedMesh", "mesh_bbox", "read_mesh", "rectangle", "tag_boundaries", "unit_square"]

BBox = tuple[tuple[float, float], tuple[float, float]]

_CELLS = {
    "triangle": dolfinx.mesh.CellType.triangle,
    "quadrilateral": dolfinx.mesh.CellType.quadrilateral,
}


@dataclass(frozen=True)
class LoadedMesh:
    """A mesh read from a file with its optional markers.

    Attributes:
        mesh: The mesh.
        cell_tags: Cell markers, or ``None`` when the file has none.
        facet_tags: Facet markers (boundary ids), or ``None`` when the file has none.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags | None = None
    facet_tags: dolfinx.mesh.MeshTags | None = None


def _cell_type(cell: str) -> dolfinx.mesh.CellType:
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    return _CELLS[cell]


def unit_square(comm: MPI.Comm, n: int, cell: str = "triangle") -> dolfinx.mesh.Mesh:
    """Structured mesh of :math:`[0, 1]^2` with ``n`` x ``n`` squares.

    Collective on ``comm``.

    Args:
        comm: Communicator the mesh is distributed over.
        n: Number of squares per side (each split into two triangles for ``"triangle"``).
        cell: ``"triangle"`` or ``"quadrilateral"``.

    Returns:
        The mesh.
    """
    return rectangle(comm, ((0.0, 0.0), (1.0, 1.0)), (n, n), cell=cell)


def rectangle(
    comm: MPI.Comm, bbox: BBox, shape: tuple[int, int], cell: str = "triangle"
) -> dolfinx.mesh.Mesh:
    """Structured mesh of a rectangle.

    Collective on ``comm``.

    Args:
        comm: Communicator the mesh is distributed over.
        bbox: ``((xmin, ymin), (xmax, ymax))``.
        shape: Number of squares ``(nx, ny)`` in x and y.
        cell: ``"triangle"`` or ``"quadrilateral"``.

    Returns:
        The mesh.
    """
    (x0, y0), (x1, y1) = bbox
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"bbox must have xmax > xmin and ymax > ymin, got {bbox}")
    nx, ny = (int(s) for s in shape)
    if nx < 1 or ny < 1:
        raise ValueError(f"shape must hold two positive cell counts (nx, ny), got {shape}")
    return dolfinx.mesh.create_rectangle(
        comm, [np.array([x0, y0]), np.array([x1, y1])], [nx, ny], cell_type=_cell_type(cell)
    )


def read_mesh(
    comm: MPI.Comm,
    path: str | pathlib.Path,
    *,
    mesh_name: str = "mesh",
    cell_tags_name: str | None = None,
    facet_tags_name: str | None = None,
) -> LoadedMesh:
    """Read a mesh and its markers from an XDMF or a gmsh ``.msh`` file.

    XDMF files are read with :class:`dolfinx.io.XDMFFile` (tags only when their grid names
    are given); ``.msh`` files with :func:`dolfinx.io.gmsh.read_from_msh` on rank 0, which
    needs the ``gmsh`` Python module. The mesh must be two-dimensional.

    Collective on ``comm``.

    Args:
        comm: Communicator the mesh is distributed over.
        path: File path, suffix ``.xdmf`` or ``.msh``.
        mesh_name: Name of the mesh grid in an XDMF file.
        cell_tags_name: Name of the cell-tag grid in an XDMF file, if any.
        facet_tags_name: Name of the facet-tag grid in an XDMF file, if any.

    Returns:
        The mesh with its tags.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the suffix is not supported.
        ImportError: If a ``.msh`` file is given and gmsh is not installed.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".xdmf":
        return _read_xdmf(comm, path, mesh_name, cell_tags_name, facet_tags_name)
    if suffix == ".msh":
        return _read_msh(comm, path)
    raise ValueError(f"mesh files must end in .xdmf or .msh, got {str(path)!r}")


def _read_xdmf(
    comm: MPI.Comm,
    path: pathlib.Path,
    mesh_name: str,
    cell_tags_name: str | None,
    facet_tags_name: str | None,
) -> LoadedMesh:
    with dolfinx.io.XDMFFile(comm, str(path), "r") as xdmf:
        mesh = xdmf.read_mesh(name=mesh_name)
        tdim = mesh.topology.dim
        cell_tags = xdmf.read_meshtags(mesh, name=cell_tags_name) if cell_tags_name else None
        facet_tags = None
        if facet_tags_name:
            mesh.topology.create_connectivity(tdim - 1, tdim)
            facet_tags = xdmf.read_meshtags(mesh, name=facet_tags_name)
    return LoadedMesh(mesh, cell_tags, facet_tags)


def _read_msh(comm: MPI.Comm, path: pathlib.Path) -> LoadedMesh:
    if importlib.util.find_spec("gmsh") is None:
        raise ImportError(
            f"reading {str(path)!r} needs the gmsh Python module; pip install gmsh, "
            "or convert the mesh to XDMF (e.g. with meshio) and read that."
        )
    import dolfinx.io.gmsh

    data = dolfinx.io.gmsh.read_from_msh(str(path), comm, rank=0, gdim=2)
    return LoadedMesh(data.mesh, data.cell_tags, data.facet_tags)


def tag_boundaries(
    mesh: dolfinx.mesh.Mesh, markers: Mapping[int, Callable[[np.ndarray], np.ndarray]]
) -> dolfinx.mesh.MeshTags:
    """Tag boundary facets by geometric predicates.

    Collective on the mesh's communicator.

    Args:
        mesh: The mesh.
        markers: Tag value to predicate; a predicate takes coordinates of shape
            ``(3, n)`` and returns a boolean mask of shape ``(n,)``. A facet matched by
            several predicates gets the largest tag.

    Returns:
        Facet tags of dimension ``tdim - 1``.
    """
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    facets, values = [], []
    for tag, predicate in sorted(markers.items()):
        found = dolfinx.mesh.locate_entities_boundary(mesh, fdim, predicate)
        facets.append(found)
        values.append(np.full(found.size, tag, dtype=np.int32))
    facets_all = np.concatenate(facets) if facets else np.zeros(0, dtype=np.int32)
    values_all = np.concatenate(values) if values else np.zeros(0, dtype=np.int32)
    # Later (larger) tags win: keep the last occurrence of each facet.
    _, last = np.unique(facets_all[::-1], return_index=True)
    keep = facets_all.size - 1 - last
    order = np.argsort(facets_all[keep])
    return dolfinx.mesh.meshtags(
        mesh, fdim, facets_all[keep][order].astype(np.int32), values_all[keep][order]
    )


def mesh_bbox(mesh: dolfinx.mesh.Mesh) -> BBox:
    """Global axis-aligned bounding box of the mesh vertices.

    Collective on the mesh's communicator.

    Args:
        mesh: The mesh.

    Returns:
        ``((xmin, ymin), (xmax, ymax))``.
    """
    x = mesh.geometry.x[:, :2]
    lo_local = x.min(axis=0) if x.size else np.full(2, np.inf)
    hi_local = x.max(axis=0) if x.size else np.full(2, -np.inf)
    lo, hi = np.empty(2), np.empty(2)
    mesh.comm.Allreduce(lo_local, lo, op=MPI.MIN)
    mesh.comm.Allreduce(hi_local, hi, op=MPI.MAX)
    return (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))
