# SPDX-License-Identifier: MIT
r"""Bilinear transfer from a regular grid to the coefficients of a Lagrange space.

The grid follows the convention of :mod:`invprior.pde.base`: ``field[i, j]`` is the value
at :math:`(x_j, y_i)` with :math:`x_j = x_{min} + j h_x`, nodes including the boundary.
"""

from __future__ import annotations

from mpi4py import MPI

import dolfinx.fem
import numpy as np
import scipy.sparse

from .mesh import BBox, mesh_bbox

__all__ = ["GridTransfer"]


class GridTransfer:
    r"""Sparse bilinear interpolation :math:`T` from grid values to owned dof values.

    Row :math:`k` of :math:`T` holds the four bilinear weights of the grid cell that
    contains the coordinate of the locally owned dof :math:`k`, so
    :math:`(T m)_k = m_h(x_k)`. Each rank holds only the rows of its owned dofs; the
    transpose sums the ranks' contributions, so its result is replicated.

    Args:
        V: Scalar Lagrange space (P1 or P2) whose owned dofs are the rows.
        grid_shape: ``(ny, nx)``, at least ``(2, 2)``.
        grid_bbox: ``((xmin, ymin), (xmax, ymax))`` of the grid nodes.
        tol: Relative tolerance (of the grid's extent) for dofs on the grid's edge.

    Raises:
        ValueError: If the grid is degenerate or does not cover every dof of the mesh.

    Example:
        >>> from mpi4py import MPI
        >>> import dolfinx.fem
        >>> import numpy as np
        >>> from invprior.pde import GridTransfer, unit_square
        >>> V = dolfinx.fem.functionspace(unit_square(MPI.COMM_WORLD, 4), ("Lagrange", 1))
        >>> T = GridTransfer(V, (3, 3), ((0.0, 0.0), (1.0, 1.0)))
        >>> T.apply(np.ones((3, 3))).min()
        np.float64(1.0)
    """

    def __init__(
        self,
        V: dolfinx.fem.FunctionSpace,
        grid_shape: tuple[int, int],
        grid_bbox: BBox,
        tol: float = 1e-10,
    ) -> None:
        if V.dofmap.index_map_bs != 1 or len(V.ufl_element().reference_value_shape) != 0:
            raise ValueError("GridTransfer needs a scalar function space, got a blocked one")
        ny, nx = (int(s) for s in grid_shape)
        if ny < 2 or nx < 2:
            raise ValueError(f"grid_shape must be at least (2, 2), got {tuple(grid_shape)}")
        (x0, y0), (x1, y1) = grid_bbox
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"grid_bbox must have xmax > xmin and ymax > ymin, got {grid_bbox}")
        self.comm: MPI.Comm = V.mesh.comm
        self.grid_shape = (ny, nx)
        self.grid_bbox: BBox = ((float(x0), float(y0)), (float(x1), float(y1)))
        n_owned = V.dofmap.index_map.size_local
        coords = V.tabulate_dof_coordinates()[:n_owned, :2]
        self._check_cover(V, coords, tol)
        self.matrix: scipy.sparse.csr_matrix = self._bilinear(coords)

    def _check_cover(self, V: dolfinx.fem.FunctionSpace, coords: np.ndarray, tol: float) -> None:
        (x0, y0), (x1, y1) = self.grid_bbox
        slack = tol * np.array([x1 - x0, y1 - y0])
        outside = np.any(
            (coords < np.array([x0, y0]) - slack) | (coords > np.array([x1, y1]) + slack), axis=1
        )
        n_out = self.comm.allreduce(int(outside.sum()), op=MPI.SUM)
        if n_out:
            raise ValueError(
                f"the grid bbox {self.grid_bbox} does not cover the mesh bbox "
                f"{mesh_bbox(V.mesh)}: {n_out} dof(s) lie outside it. Pass a grid_bbox that "
                "contains the whole mesh."
            )

    def _bilinear(self, coords: np.ndarray) -> scipy.sparse.csr_matrix:
        ny, nx = self.grid_shape
        (x0, y0), (x1, y1) = self.grid_bbox
        s = (coords[:, 0] - x0) / (x1 - x0) * (nx - 1)
        t = (coords[:, 1] - y0) / (y1 - y0) * (ny - 1)
        j = np.clip(np.floor(s), 0, nx - 2).astype(np.int64)
        i = np.clip(np.floor(t), 0, ny - 2).astype(np.int64)
        a = np.clip(s - j, 0.0, 1.0)
        b = np.clip(t - i, 0.0, 1.0)
        cols = np.stack([i * nx + j, i * nx + j + 1, (i + 1) * nx + j, (i + 1) * nx + j + 1], 1)
        vals = np.stack([(1 - a) * (1 - b), a * (1 - b), (1 - a) * b, a * b], axis=1)
        rows = np.repeat(np.arange(coords.shape[0]), 4)
        shape = (coords.shape[0], ny * nx)
        matrix = scipy.sparse.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=shape)
        matrix.eliminate_zeros()
        return matrix

    @property
    def n_owned(self) -> int:
        """Number of rows (locally owned dofs)."""
        return self.matrix.shape[0]

    def apply(self, field: np.ndarray) -> np.ndarray:
        """Interpolate grid values to the owned dofs.

        Args:
            field: Grid values, shape ``(ny, nx)``.

        Returns:
            Owned dof values, shape ``(n_owned,)``.
        """
        return self.matrix @ np.asarray(field, dtype=np.float64).reshape(-1)

    def apply_transpose(self, cotangent: np.ndarray) -> np.ndarray:
        """Apply :math:`T^T` to a cotangent of the owned dof values.

        Collective on ``comm``.

        Args:
            cotangent: Owned dof cotangent, shape ``(n_owned,)``.

        Returns:
            Grid cotangent, shape ``(ny, nx)``, summed over ranks (replicated).
        """
        local = self.matrix.T @ np.asarray(cotangent, dtype=np.float64)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        return total.reshape(self.grid_shape)
