# SPDX-License-Identifier: MIT
r"""Point sensors: the observation operator :math:`B` and its transpose.

:math:`(B u)_k = u_h(p_k) = \sum_i u_i \phi_i(p_k)`. Each sensor point is owned by exactly
one rank (the lowest rank whose owned cells contain it), so sums over ranks never count a
point twice, whatever the ghost layer.
"""

from __future__ import annotations

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem
import dolfinx.geometry
import numpy as np
import scipy.sparse

from .compat import create_vector, geometry_maps
from .errors import SensorOutsideMeshError
from .mesh import BBox

__all__ = ["PointSensors", "grid_sensors"]


def grid_sensors(bbox: BBox, k: int, margin: float | None = None) -> np.ndarray:
    """A ``k`` x ``k`` grid of sensor positions strictly inside a rectangle.

    Args:
        bbox: ``((xmin, ymin), (xmax, ymax))``.
        k: Sensors per side (``k = 8`` gives 64 sensors).
        margin: Distance from the edges as a fraction of the extent; default
            ``1 / (k + 1)``, which spaces the sensors evenly.

    Returns:
        Points, shape ``(k * k, 2)``, x varying fastest.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of sensors per side, got {k}")
    margin = 1.0 / (k + 1) if margin is None else float(margin)
    if not 0.0 < margin < 0.5:
        raise ValueError(f"margin must lie in (0, 0.5), got {margin}")
    (x0, y0), (x1, y1) = bbox
    xs = np.linspace(x0 + margin * (x1 - x0), x1 - margin * (x1 - x0), k)
    ys = np.linspace(y0 + margin * (y1 - y0), y1 - margin * (y1 - y0), k)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


class PointSensors:
    r"""Point evaluation of a function of ``V`` at fixed points.

    The operator is stored as a sparse matrix with one row per sensor and one column per
    local dof (owned and ghost) of ``V``; rows of sensors owned by another rank are empty.

    Collective on ``V.mesh.comm`` (construction, :meth:`observe`, :meth:`adjoint_rhs`).

    Args:
        V: Scalar Lagrange space of degree 1 or 2.
        points: Sensor coordinates, shape ``(n_obs, 2)`` or ``(n_obs, 3)``, the same on
            every rank.

    Raises:
        SensorOutsideMeshError: Naming every point that lies outside the mesh.
        ValueError: If ``points`` has the wrong shape or is not finite, or ``V`` is not
            supported.

    Example:
        >>> from mpi4py import MPI
        >>> import dolfinx.fem
        >>> from invprior.pde import PointSensors, unit_square
        >>> V = dolfinx.fem.functionspace(unit_square(MPI.COMM_WORLD, 4), ("Lagrange", 1))
        >>> u = dolfinx.fem.Function(V)
        >>> u.interpolate(lambda x: x[0] + 2 * x[1])
        >>> PointSensors(V, [[0.3, 0.1], [0.5, 0.5]]).observe(u).round(12)
        array([0.5, 1.5])
    """

    def __init__(self, V: dolfinx.fem.FunctionSpace, points: np.ndarray) -> None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3) or pts.shape[0] == 0:
            raise ValueError(
                f"points must have shape (n_obs, 2) or (n_obs, 3) with n_obs >= 1, got {pts.shape}"
            )
        if not np.isfinite(pts).all():
            raise ValueError("points must be finite; found NaN or inf coordinates")
        _check_space(V)
        self.V = V
        self.comm: MPI.Comm = V.mesh.comm
        self.points = np.zeros((pts.shape[0], 3))
        self.points[:, : pts.shape[1]] = pts
        cells = self._locate()
        self.owned = np.flatnonzero(cells >= 0)
        self.matrix: scipy.sparse.csr_matrix = self._tabulate(cells)

    @property
    def n_obs(self) -> int:
        """Number of sensors."""
        return self.points.shape[0]

    def _locate(self) -> np.ndarray:
        """Owned cell of each point on this rank, ``-1`` where another rank owns it."""
        mesh = self.V.mesh
        tdim = mesh.topology.dim
        n_cells = mesh.topology.index_map(tdim).size_local
        tree = dolfinx.geometry.bb_tree(mesh, tdim, entities=np.arange(n_cells, dtype=np.int32))
        candidates = dolfinx.geometry.compute_collisions_points(tree, self.points)
        colliding = dolfinx.geometry.compute_colliding_cells(mesh, candidates, self.points)
        cells = np.full(self.n_obs, -1, dtype=np.int32)
        for k in range(self.n_obs):
            found = colliding.links(k)
            if found.size:
                cells[k] = found[0]
        rank, size = self.comm.rank, self.comm.size
        mine = np.where(cells >= 0, rank, size).astype(np.int32)
        owner = np.empty_like(mine)
        self.comm.Allreduce(mine, owner, op=MPI.MIN)
        outside = np.flatnonzero(owner == size)
        if outside.size:
            raise SensorOutsideMeshError(outside, self.points[outside])
        cells[owner != rank] = -1
        return cells

    def _tabulate(self, cells: np.ndarray) -> scipy.sparse.csr_matrix:
        """Basis values of the owned points' cells, as rows of the local operator."""
        V, geometry = self.V, self.V.mesh.geometry
        gdim = geometry.dim
        dofmap, cmap = geometry_maps(V.mesh)
        element = V.element.basix_element
        rows, cols, vals = [], [], []
        for k in self.owned:
            cell = cells[k]
            cell_x = geometry.x[dofmap[cell], :gdim]
            ref = cmap.pull_back(self.points[k : k + 1, :gdim], cell_x)
            phi = element.tabulate(0, ref)[0, 0, :, 0]
            dofs = V.dofmap.cell_dofs(cell)
            rows.append(np.full(dofs.size, k))
            cols.append(dofs)
            vals.append(phi)
        n_local = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
        if not rows:
            return scipy.sparse.csr_matrix((self.n_obs, n_local))
        data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
        return scipy.sparse.csr_matrix(data, shape=(self.n_obs, n_local))

    def observe(self, u: dolfinx.fem.Function) -> np.ndarray:
        """Values of ``u`` at the sensors.

        Collective on ``comm``. The ghost values of ``u`` must be up to date.

        Args:
            u: Function in ``V``.

        Returns:
            Observations, shape ``(n_obs,)``, replicated on every rank.
        """
        local = self.matrix @ u.x.array
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        return total

    def adjoint_rhs(self, cotangent: np.ndarray, b: PETSc.Vec | None = None) -> PETSc.Vec:
        r"""Write :math:`B^T \bar y` into a ghosted vector of ``V`` (owned entries summed).

        Collective on ``comm``.

        Args:
            cotangent: Observation cotangent, shape ``(n_obs,)``, replicated.
            b: Ghosted vector with the layout of ``V``, overwritten; ``None`` creates one
                (the caller destroys it).

        Returns:
            ``b``, with correct owned entries (``b.array``, shape ``(n_owned,)``).
        """
        b = create_vector(self.V) if b is None else b
        with b.localForm() as local:
            local.array[:] = self.matrix.T @ np.asarray(cotangent, dtype=np.float64)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return b


def _check_space(V: dolfinx.fem.FunctionSpace) -> None:
    element = V.element.basix_element
    if V.dofmap.index_map_bs != 1 or len(V.ufl_element().reference_value_shape) != 0:
        raise ValueError("point sensors need a scalar function space, got a blocked one")
    if element.degree > 2 or V.element.needs_dof_transformations:
        raise ValueError(
            f"point sensors support Lagrange P1 and P2, got degree {element.degree}; "
            "observe a degree 1 or 2 space"
        )
