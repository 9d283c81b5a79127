# SPDX-License-Identifier: MIT
"""Grid fields as finite-element functions in XDMF files, for ParaView.

The only module of :mod:`invprior.pde` that writes files (as DOLFINx keeps its own in
``dolfinx.io``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mpi4py import MPI

import dolfinx.fem
import dolfinx.io
import numpy as np

from invprior.collective import on_root, raise_together
from invprior.fileio import discard, move_into, partial_folder

from .transfer import GridTransfer

__all__ = ["write_grid_functions"]


def write_grid_functions(
    space: dolfinx.fem.FunctionSpace,
    transfer: GridTransfer,
    fields: Mapping[str, np.ndarray],
    path: str | os.PathLike,
) -> Path:
    r"""Write grid fields as P1 functions :math:`m_h = T m` to one XDMF file (+ its HDF5 data).

    Each field becomes a :class:`dolfinx.fem.Function` on ``space`` named after its key,
    interpolated with the bilinear transfer :math:`T` (exact at the grid nodes, bilinear in
    between), so ParaView shows the same values as a plot of the grid.

    The write is atomic per file: both files are written into a hidden partial folder next
    to ``path`` (:func:`invprior.fileio.partial_folder`) and then renamed onto ``path``
    (``.xdmf``) and ``path`` with suffix ``.h5``, the ``.h5`` first
    (:func:`invprior.fileio.move_into`). The ``.xdmf`` refers to
    the ``.h5`` by its bare file name, which the rename keeps valid. A reader that opens the
    pair between the two renames may see a new ``.h5`` with the previous ``.xdmf``; an
    interrupted write leaves the previous pair and no temporary files.

    Collective on ``transfer.comm``: every rank passes the same (replicated) fields; the
    path must lie on a file system all ranks see. Rank 0 alone makes the partial folder
    and renames the files; an error there is raised on every rank
    (:mod:`invprior.collective`), so no rank is left waiting.

    Args:
        space: The scalar P1 space whose owned dofs are the rows of ``transfer`` (for a
            forward model, ``model.Q`` with ``model.transfer``).
        transfer: Grid to dof transfer.
        fields: ``{name: values}``, each of shape ``transfer.grid_shape``.
        path: Target ``.xdmf`` file; its folder is created if needed.

    Returns:
        The path of the ``.xdmf`` file.

    Raises:
        ValueError: If the space does not match the transfer, there are no fields, a field
            has the wrong shape, or ``path`` does not end in ``.xdmf``.
        OSError, RuntimeError: If rank 0 cannot make the partial folder or rename the
            files (on rank 0; a ``RuntimeError`` naming it on the other ranks).

    Example:
        >>> import tempfile
        >>> from invprior.pde import unit_square
        >>> V = dolfinx.fem.functionspace(unit_square(MPI.COMM_SELF, 4), ("Lagrange", 1))
        >>> T = GridTransfer(V, (3, 3), ((0.0, 0.0), (1.0, 1.0)))
        >>> target = tempfile.mkdtemp() + "/m.xdmf"
        >>> out = write_grid_functions(V, T, {"m": np.ones((3, 3))}, target)
        >>> out.with_suffix(".h5").is_file()
        True
    """
    path = Path(path)
    if path.suffix != ".xdmf":
        raise ValueError(f"path must end in .xdmf, got {str(path)!r}")
    if space.dofmap.index_map.size_local != transfer.n_owned:
        raise ValueError(
            f"space has {space.dofmap.index_map.size_local} owned dofs on this rank but the "
            f"transfer has {transfer.n_owned} rows; pass the space the transfer was built on"
        )
    if not fields:
        raise ValueError("fields is empty; pass at least one {name: values} entry")
    for name, values in fields.items():
        if np.shape(values) != transfer.grid_shape:
            raise ValueError(
                f"fields[{name!r}] has shape {np.shape(values)} but the grid is "
                f"{transfer.grid_shape}; pass arrays of shape {transfer.grid_shape}"
            )
    comm: MPI.Comm = transfer.comm
    tmp = on_root(comm, partial_folder, path)
    try:
        with raise_together(comm):  # also waits until every rank has written
            _write(space, transfer, fields, tmp / path.name)
        h5 = path.with_suffix(".h5")
        on_root(comm, move_into, tmp, {h5.name: h5, path.name: path})
    finally:
        if comm.rank == 0:
            discard(tmp)
    return path


def _write(
    space: dolfinx.fem.FunctionSpace,
    transfer: GridTransfer,
    fields: Mapping[str, np.ndarray],
    path: Path,
) -> None:
    """Write the mesh and one function per field to ``path`` (collective)."""
    n_owned = transfer.n_owned
    with dolfinx.io.XDMFFile(transfer.comm, path, "w") as xdmf:
        xdmf.write_mesh(space.mesh)
        for name, values in fields.items():
            function = dolfinx.fem.Function(space, name=name)
            function.x.array[:n_owned] = transfer.apply(values)
            function.x.scatter_forward()
            xdmf.write_function(function)
