# SPDX-License-Identifier: MIT
r"""The source problem: a Poisson equation whose right-hand side is the grid field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from petsc4py import PETSc

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.mesh
import numpy as np
import ufl

from .base import AffineForwardModel
from .boundary import Marker, Value, as_coefficient
from .compat import create_vector
from .mesh import BBox
from .observation import PointSensors
from .problem import EllipticProblem, assemble_lifted_rhs

__all__ = ["SourceProblem"]


class SourceProblem(EllipticProblem, AffineForwardModel):
    r"""Observations of :math:`-\nabla\cdot(\kappa\nabla u) = f` with :math:`f` from the grid.

    With :math:`f_h = T m \in Q` (bilinear transfer of the grid field :math:`m`), find
    :math:`u_h \in V`, :math:`u_h = g` on :math:`\Gamma_D`, such that

    .. math::

        \int_\Omega \kappa \nabla u_h \cdot \nabla v \, dx
        = \int_\Omega f_h v \, dx + \int_{\Gamma_N} g_N v \, ds
        \quad \forall v \in V_0,

    i.e. :math:`A u = P M T m + b_0` with the mass matrix :math:`M` (rows :math:`V`,
    columns :math:`Q`), :math:`P` zeroing the Dirichlet rows and :math:`b_0` the boundary
    data. Observations are :math:`y = B u`. The adjoint of :math:`\bar y` is

    .. math::

        A^T \lambda = P B^T \bar y, \qquad \bar m = T^T M^T \lambda,

    one back-substitution with the factorisation of :math:`A` (assembled and factorised
    once; :math:`A` is symmetric; with ``solver="iterative"`` its multigrid hierarchy is
    built once instead and each solve is a preconditioned CG). The problem is affine in the
    field: :meth:`affine_map` gives the dense map :math:`F = B A^{-1} P M T` and the offset
    :math:`c = B A^{-1} b_0` (``invprior.bridge.DenseObservationMap`` applies them in
    place of the solves).

    Collective on the mesh's communicator (every method).

    Args:
        space: State space ``V`` (Lagrange P1 or P2), or a mesh (then P1).
        sensors: :class:`PointSensors` on ``V`` or points, shape ``(n_obs, 2|3)``.
        grid_shape: ``(ny, nx)`` of the source field.
        grid_bbox: Bounding box of the grid; default the mesh's.
        kappa: Conductivity: float (finite and positive), callable of coordinates
            (interpolated into ``V``) or UFL expression.
        dirichlet: ``(marker, g)`` pairs; default ``u = 0`` on the whole boundary.
        neumann: ``(marker, g_N)`` pairs for the flux :math:`\kappa \nabla u \cdot n`.
        facet_tags: Facet tags for integer markers.
        petsc_options: Overrides of the options of the ``solver`` preset.
        petsc_options_prefix: Unique PETSc options prefix.
        solver: ``"direct"`` (MUMPS Cholesky, the default) or ``"iterative"`` (CG with
            algebraic multigrid, for meshes too large to factorise); see
            :mod:`invprior.pde.solver`.

    Raises:
        ValueError: A number ``kappa`` that is not finite and positive.

    Example:
        >>> from mpi4py import MPI
        >>> import numpy as np
        >>> from invprior.pde import SourceProblem, unit_square
        >>> problem = SourceProblem(unit_square(MPI.COMM_WORLD, 8), [[0.5, 0.5]], (9, 9))
        >>> y = problem.forward(np.ones((9, 9)))
        >>> bool(0.07 < y[0] < 0.08)  # about 0.0737 for -Laplace u = 1 on the unit square
        True
    """

    def __init__(
        self,
        space: dolfinx.fem.FunctionSpace | dolfinx.mesh.Mesh,
        sensors: PointSensors | np.ndarray,
        grid_shape: tuple[int, int],
        grid_bbox: BBox | None = None,
        *,
        kappa: Value = 1.0,
        dirichlet: Sequence[tuple[Marker, Value]] | None = None,
        neumann: Sequence[tuple[Marker, Value]] = (),
        facet_tags: dolfinx.mesh.MeshTags | None = None,
        petsc_options: Mapping[str, object] | None = None,
        petsc_options_prefix: str = "invprior_source_",
        solver: str = "direct",
    ) -> None:
        if isinstance(kappa, int | float | np.integer | np.floating) and not (
            np.isfinite(kappa) and kappa > 0
        ):
            raise ValueError(
                f"kappa must be a finite positive conductivity (the operator is singular or "
                f"not elliptic otherwise), got {kappa}"
            )
        super().__init__(
            space, sensors, grid_shape, grid_bbox, dirichlet, neumann, facet_tags,
            petsc_options, petsc_options_prefix, "SourceProblem", solver,
        )  # fmt: skip
        V, Q = self.V, self.Q
        u, v, p = ufl.TrialFunction(V), ufl.TestFunction(V), ufl.TrialFunction(Q)
        kappa_h = as_coefficient(V, kappa, "kappa")
        a = dolfinx.fem.form(ufl.inner(kappa_h * ufl.grad(u), ufl.grad(v)) * ufl.dx)
        self.A = dolfinx.fem.petsc.assemble_matrix(a, bcs=self.bcs)
        self.A.assemble()
        self.M = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(ufl.inner(p, v) * ufl.dx))
        self.M.assemble()
        self._b0 = self._boundary_rhs(a)
        self._solver = self._make_solver(self.A)
        self._solver.set_up()
        self._q = create_vector(Q)

    def _boundary_rhs(self, a: dolfinx.fem.Form) -> PETSc.Vec:
        """:math:`b_0`: Neumann data, Dirichlet lifting and the Dirichlet values."""
        zero = dolfinx.fem.Constant(self.V.mesh, PETSc.ScalarType(0.0))
        form = zero * ufl.TestFunction(self.V) * ufl.dx
        L = dolfinx.fem.form(form if self.neumann is None else form + self.neumann)
        return assemble_lifted_rhs(create_vector(self.V), L, a, self.bcs)

    def solve_forward(self, field: np.ndarray) -> dolfinx.fem.Function:
        """Solve for the state with the source ``field`` (one back-substitution).

        Args:
            field: Source on the grid, shape ``grid_shape``.

        Returns:
            The state ``self.u`` (overwritten by the next solve).

        Raises:
            ValueError: If ``field`` has the wrong shape or non-finite values.
            PDESolveError: If the solve fails.
        """
        field = self.check_field(field)
        self._q.array[:] = self.transfer.apply(field)
        b = self._rhs
        self.M.mult(self._q, b)
        self._zero_bc_rows(b)
        b.axpy(1.0, self._b0)
        return self._solve_state(b)

    def forward(self, field: np.ndarray) -> np.ndarray:
        """Predicted observations, shape ``(n_obs,)``, for a source of shape ``grid_shape``."""
        return self.sensors.observe(self.solve_forward(field))

    def vjp(self, field: np.ndarray, obs_cotangent: np.ndarray) -> np.ndarray:
        r""":math:`\bar m = T^T M^T \lambda` with one adjoint solve; shape ``grid_shape``.

        The problem is linear in the field, so ``field`` is only validated.
        """
        self.check_field(field)
        return self._field_cotangent(self.solve_adjoint(obs_cotangent))

    def _field_cotangent(self, lam: dolfinx.fem.Function) -> np.ndarray:
        self.M.multTranspose(lam.x.petsc_vec, self._q)
        return self.transfer.apply_transpose(self._q.array)

    def affine_map(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(F, c)`` with forward(m) :math:`= F m + c`, replicated on every rank.

        :math:`F = B A^{-1} P M T`, shape ``(n_obs, ny * nx)``, from ``n_obs`` adjoint
        solves (row :math:`k` is :math:`T^T M^T A^{-T} P B^T e_k`); :math:`c` the
        observations of a zero source (the boundary data's share), one forward solve. Each
        call solves again: keep the result (``invprior.bridge.DenseObservationMap`` does).
        """
        rows = [self._field_cotangent(self.solve_adjoint(e)).ravel() for e in np.eye(self.n_obs)]
        self._b0.copy(self._rhs)
        offset = self.sensors.observe(self._solve_state(self._rhs))
        return np.stack(rows), offset

    def destroy(self) -> None:
        """Free the PETSc objects. Collective on ``comm``."""
        for obj in (self.A, self.M, self._b0, self._q):
            obj.destroy()
        super().destroy()
