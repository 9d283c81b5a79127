# SPDX-License-Identifier: MIT
r"""The conductivity problem: a diffusion equation whose log-conductivity is the grid field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.mesh
import numpy as np
import ufl

from .base import CachedState
from .boundary import Marker, Value, as_coefficient
from .compat import create_vector
from .mesh import BBox
from .observation import PointSensors
from .problem import EllipticProblem, assemble_dual, assemble_lifted_rhs

__all__ = ["ConductivityProblem"]


class ConductivityProblem(CachedState, EllipticProblem):
    r"""Point observations of :math:`-\nabla\cdot(e^{m}\nabla u) = f` with :math:`m` from the grid.

    With :math:`m_h = T m \in Q` (bilinear transfer of the grid log-conductivity), find
    :math:`u_h \in V`, :math:`u_h = g` on :math:`\Gamma_D`, such that

    .. math::

        \int_\Omega e^{m_h} \nabla u_h \cdot \nabla v \, dx
        = \int_\Omega f v \, dx + \int_{\Gamma_N} g_N v \, ds
        \quad \forall v \in V_0,

    i.e. :math:`A(m) u = b(m)`, re-assembled for each new field. Observations are
    :math:`y = B u`. For a cotangent :math:`\bar y` the adjoint :math:`\lambda \in V_0` and
    the gradient with respect to the P1 coefficients :math:`\phi_i` of :math:`m_h` are

    .. math::

        A(m)^T \lambda = P B^T \bar y, \qquad
        \bar m_i = -\int_\Omega e^{m_h} \phi_i \, \nabla u_h \cdot \nabla \lambda \, dx,
        \qquad \bar m = T^T \bar m_h,

    the derivative of the operator with respect to :math:`m` applied to the state. The last
    forward state is cached, so :meth:`vjp` at the field of the last :meth:`forward` costs
    one adjoint solve (a new field costs a forward solve first).

    Collective on the mesh's communicator (every method).

    Args:
        space: State space ``V`` (Lagrange P1 or P2), or a mesh (then P1).
        sensors: :class:`PointSensors` on ``V`` or points, shape ``(n_obs, 2|3)``.
        grid_shape: ``(ny, nx)`` of the log-conductivity field.
        grid_bbox: Bounding box of the grid; default the mesh's.
        source: Right-hand side :math:`f`: float (finite), callable (interpolated into
            ``V``) or UFL expression.
        dirichlet: ``(marker, g)`` pairs; default ``u = 0`` on the whole boundary.
        neumann: ``(marker, g_N)`` pairs for the flux :math:`e^m \nabla u \cdot n`.
        facet_tags: Facet tags for integer markers.
        petsc_options: Overrides of the options of the ``solver`` preset.
        petsc_options_prefix: Unique PETSc options prefix.
        solver: ``"direct"`` (MUMPS Cholesky, the default) or ``"iterative"`` (CG with
            algebraic multigrid, for meshes too large to factorise); see
            :mod:`invprior.pde.solver`.

    Raises:
        ValueError: A number ``source`` that is not finite.

    Example:
        >>> from mpi4py import MPI
        >>> import numpy as np
        >>> from invprior.pde import ConductivityProblem, unit_square
        >>> problem = ConductivityProblem(unit_square(MPI.COMM_WORLD, 8), [[0.5, 0.5]], (9, 9))
        >>> y0 = problem.forward(np.zeros((9, 9)))
        >>> y1 = problem.forward(np.full((9, 9), np.log(2.0)))  # twice the conductivity
        >>> bool(np.isclose(y1[0], y0[0] / 2))
        True
    """

    def __init__(
        self,
        space: dolfinx.fem.FunctionSpace | dolfinx.mesh.Mesh,
        sensors: PointSensors | np.ndarray,
        grid_shape: tuple[int, int],
        grid_bbox: BBox | None = None,
        *,
        source: Value = 1.0,
        dirichlet: Sequence[tuple[Marker, Value]] | None = None,
        neumann: Sequence[tuple[Marker, Value]] = (),
        facet_tags: dolfinx.mesh.MeshTags | None = None,
        petsc_options: Mapping[str, object] | None = None,
        petsc_options_prefix: str = "invprior_conductivity_",
        solver: str = "direct",
    ) -> None:
        if isinstance(source, int | float | np.integer | np.floating) and not np.isfinite(source):
            raise ValueError(f"source must be a finite number, got {source}")
        super().__init__(
            space, sensors, grid_shape, grid_bbox, dirichlet, neumann, facet_tags,
            petsc_options, petsc_options_prefix, "ConductivityProblem", solver,
        )  # fmt: skip
        V, Q = self.V, self.Q
        u, v, phi = ufl.TrialFunction(V), ufl.TestFunction(V), ufl.TestFunction(Q)
        self.m = dolfinx.fem.Function(Q, name="m")
        kappa = ufl.exp(self.m)
        # One quadrature rule for the operator and its derivative, so that the gradient is
        # the exact derivative of the discrete forward map.
        degree = V.element.basix_element.degree
        dx = ufl.dx(metadata={"quadrature_degree": 2 * degree + 2})
        self._a = dolfinx.fem.form(kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx)
        L = as_coefficient(V, source, "source") * v * ufl.dx
        self._L = dolfinx.fem.form(L if self.neumann is None else L + self.neumann)
        grad_m = -kappa * ufl.inner(ufl.grad(self.u), ufl.grad(self.lam)) * phi * dx
        self._grad_form = dolfinx.fem.form(grad_m)
        self.A = dolfinx.fem.petsc.create_matrix(self._a)
        self._solver = self._make_solver(self.A)
        self._grad = create_vector(Q)

    def _assemble(self, field: np.ndarray) -> None:
        """Set :math:`m_h = T m` and assemble :math:`A(m)` and :math:`b(m)`."""
        n_owned = self.transfer.n_owned
        self.m.x.array[:n_owned] = self.transfer.apply(field)
        self.m.x.scatter_forward()
        self.A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(self.A, self._a, bcs=self.bcs)
        self.A.assemble()
        assemble_lifted_rhs(self._rhs, self._L, self._a, self.bcs)

    def solve_forward(self, field: np.ndarray) -> dolfinx.fem.Function:
        """Solve for the state with log-conductivity ``field`` (assembly plus one solve).

        Args:
            field: Log-conductivity on the grid, shape ``grid_shape``.

        Returns:
            The state ``self.u`` (overwritten by the next solve).

        Raises:
            ValueError: If ``field`` has the wrong shape or non-finite values.
            PDESolveError: If the solve fails.
        """
        field = self.check_field(field)
        self._forget_state()
        self._assemble(field)
        self._solve_state(self._rhs)
        self._keep_state(field, self.sensors.observe(self.u))
        return self.u

    def vjp(self, field: np.ndarray, obs_cotangent: np.ndarray) -> np.ndarray:
        r"""Cotangent :math:`\bar m` of the field, shape ``grid_shape``.

        One adjoint solve, plus a forward solve when ``field`` differs from the cached state.
        """
        self._ensure_state(self.check_field(field))
        self.solve_adjoint(obs_cotangent)
        g = assemble_dual(self._grad, self._grad_form)
        return self.transfer.apply_transpose(g.array[: self.transfer.n_owned])

    def destroy(self) -> None:
        """Free the PETSc objects. Collective on ``comm``."""
        self.A.destroy()
        self._grad.destroy()
        super().destroy()
