# SPDX-License-Identifier: MIT
r"""Shared set-up of the elliptic forward models: spaces, sensors, transfer, boundary data.

State space :math:`V` (Lagrange, degree 1 or 2) and parameter space :math:`Q` (P1, equal
to :math:`V` for degree 1): the grid field enters as :math:`m_h = T m \in Q`, the state is
observed as :math:`y = B u_h`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.mesh
import numpy as np

from .base import ForwardModel, SolveCounter
from .boundary import Marker, Value, dirichlet_bcs, neumann_form
from .compat import create_vector
from .mesh import BBox, mesh_bbox
from .observation import PointSensors
from .solver import LinearSolver, solver_options
from .transfer import GridTransfer

__all__ = ["EllipticProblem", "assemble_dual", "assemble_lifted_rhs"]


def assemble_lifted_rhs(
    b: PETSc.Vec, L: dolfinx.fem.Form, a: dolfinx.fem.Form, bcs: Sequence[dolfinx.fem.DirichletBC]
) -> PETSc.Vec:
    """Assemble ``L`` into ``b`` with the Dirichlet lifting of ``a`` and the boundary values.

    ``b`` is zeroed first; ghost contributions are summed to their owners after the
    lifting, then the Dirichlet values are set. Collective.
    """
    with b.localForm() as local:
        local.set(0.0)
    dolfinx.fem.petsc.assemble_vector(b, L)
    dolfinx.fem.petsc.apply_lifting(b, [a], bcs=[bcs])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    dolfinx.fem.petsc.set_bc(b, bcs)
    return b


def assemble_dual(vec: PETSc.Vec, form: dolfinx.fem.Form) -> PETSc.Vec:
    """Assemble the linear ``form`` into ``vec`` (zeroed first), ghosts summed to owners.

    Collective.
    """
    with vec.localForm() as local:
        local.set(0.0)
    dolfinx.fem.petsc.assemble_vector(vec, form)
    vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    return vec


class EllipticProblem(ForwardModel):
    r"""Common state of :class:`SourceProblem` and :class:`ConductivityProblem`.

    Collective on the mesh's communicator.

    Args:
        space: State space ``V`` (scalar Lagrange, degree 1 or 2), or a mesh (then P1).
        sensors: A :class:`PointSensors` on ``V``, or points of shape ``(n_obs, 2|3)``.
        grid_shape: ``(ny, nx)`` of the input field.
        grid_bbox: ``((xmin, ymin), (xmax, ymax))`` of the grid; default the mesh's bbox.
        dirichlet: ``(marker, value)`` pairs for :math:`u = g`; default ``u = 0`` on the
            whole boundary. At least one part is needed.
        neumann: ``(marker, value)`` pairs for the flux :math:`\kappa \nabla u \cdot n = g`.
        facet_tags: Facet tags for integer markers.
        petsc_options: Overrides of the options of the ``solver`` preset.
        petsc_options_prefix: Unique PETSc options prefix of this problem's solver.
        name: Name used in messages.
        solver: Preset name, ``"direct"`` (MUMPS Cholesky) or ``"iterative"`` (CG + GAMG);
            see :data:`invprior.pde.solver.SOLVER_PRESETS`.

    Raises:
        ValueError: If ``solver`` names no preset.
    """

    def __init__(
        self,
        space: dolfinx.fem.FunctionSpace | dolfinx.mesh.Mesh,
        sensors: PointSensors | np.ndarray,
        grid_shape: tuple[int, int],
        grid_bbox: BBox | None,
        dirichlet: Sequence[tuple[Marker, Value]] | None,
        neumann: Sequence[tuple[Marker, Value]],
        facet_tags: dolfinx.mesh.MeshTags | None,
        petsc_options: Mapping[str, object] | None,
        petsc_options_prefix: str,
        name: str,
        solver: str,
    ) -> None:
        solver_options(solver)  # reject an unknown preset before any assembly
        if isinstance(space, dolfinx.mesh.Mesh):
            space = dolfinx.fem.functionspace(space, ("Lagrange", 1))
        self.V = space
        self.comm: MPI.Comm = space.mesh.comm
        degree = space.element.basix_element.degree
        self.Q = space if degree == 1 else dolfinx.fem.functionspace(space.mesh, ("Lagrange", 1))
        if not isinstance(sensors, PointSensors):
            sensors = PointSensors(space, sensors)
        elif sensors.V is not space:
            raise ValueError("sensors were built on another function space; pass the points")
        self.sensors = sensors
        self.n_obs = sensors.n_obs
        bbox = mesh_bbox(space.mesh) if grid_bbox is None else grid_bbox
        self.transfer = GridTransfer(self.Q, grid_shape, bbox)
        self.grid_shape = self.transfer.grid_shape
        self.grid_bbox = self.transfer.grid_bbox
        self.bcs = dirichlet_bcs(
            space, [(None, 0.0)] if dirichlet is None else dirichlet, facet_tags
        )
        self.neumann = neumann_form(space, neumann, facet_tags)
        bc_dofs = np.unique(np.concatenate([bc.dof_indices()[0] for bc in self.bcs]))
        self._bc_owned = bc_dofs[bc_dofs < space.dofmap.index_map.size_local]
        self.counter = SolveCounter()
        self.name = name
        self.u = dolfinx.fem.Function(space, name="u")
        self.lam = dolfinx.fem.Function(space, name="lambda")
        self._rhs = create_vector(space)
        self._prefix = petsc_options_prefix
        self._petsc_options = petsc_options
        self._solver_preset = solver
        self._solver: LinearSolver | None = None

    def _make_solver(self, A: PETSc.Mat) -> LinearSolver:
        A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        return LinearSolver(
            self.comm, A, self._petsc_options, self._prefix, self.name, self._solver_preset
        )

    def check_field(self, field: np.ndarray, name: str = "field") -> np.ndarray:
        """Validate a grid field.

        Args:
            field: Grid values, shape ``grid_shape``.
            name: Argument name for messages.

        Returns:
            The field as a float64 array.

        Raises:
            TypeError: If it is not numeric.
            ValueError: If the shape is wrong or a value is NaN or infinite.
        """
        arr = np.asarray(field)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if arr.shape != self.grid_shape:
            raise ValueError(
                f"{name} has shape {arr.shape} but the grid is {self.grid_shape}; "
                f"pass an array of shape {self.grid_shape} (row i is y_i, column j is x_j)"
            )
        arr = arr.astype(np.float64, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError(
                f"{name} holds {int(np.count_nonzero(~np.isfinite(arr)))} NaN/inf value(s); "
                "the PDE needs finite inputs"
            )
        return arr

    def check_cotangent(self, obs_cotangent: np.ndarray) -> np.ndarray:
        """Validate an observation cotangent, shape ``(n_obs,)``; returns float64."""
        arr = np.asarray(obs_cotangent, dtype=np.float64)
        if arr.shape != (self.n_obs,):
            raise ValueError(
                f"obs_cotangent has shape {arr.shape} but there are {self.n_obs} sensors; "
                f"pass shape ({self.n_obs},)"
            )
        if not np.isfinite(arr).all():
            raise ValueError("obs_cotangent holds NaN/inf values")
        return arr

    def _zero_bc_rows(self, vec: PETSc.Vec) -> None:
        vec.array[self._bc_owned] = 0.0

    def _solve_state(self, b: PETSc.Vec) -> dolfinx.fem.Function:
        """Forward solve into ``self.u``, ghosts updated."""
        self._solver.solve(b, self.u.x.petsc_vec, "forward")
        self.counter.forward += 1
        self.u.x.scatter_forward()
        return self.u

    def solve_adjoint(self, obs_cotangent: np.ndarray) -> dolfinx.fem.Function:
        r"""Adjoint solve :math:`A^T \lambda = P B^T \bar y` at the current operator.

        :math:`P` zeroes the Dirichlet rows, so :math:`\lambda` vanishes there. The operator
        is the one of the last forward solve.

        Collective on ``comm``.

        Args:
            obs_cotangent: Observation cotangent, shape ``(n_obs,)``.

        Returns:
            The adjoint state ``self.lam`` (ghosts updated).

        Raises:
            PDESolveError: If the solve fails.
        """
        b = self.sensors.adjoint_rhs(self.check_cotangent(obs_cotangent), self._rhs)
        self._zero_bc_rows(b)
        self._solver.solve(b, self.lam.x.petsc_vec, "adjoint")
        self.counter.adjoint += 1
        self.lam.x.scatter_forward()
        return self.lam

    def destroy(self) -> None:
        """Free the PETSc objects. Collective on ``comm``."""
        self._rhs.destroy()
        if self._solver is not None:
            self._solver.destroy()
