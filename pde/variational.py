# SPDX-License-Identifier: MIT
r"""Any elliptic forward model from a UFL residual form, with its adjoint derived by UFL.

The user writes the residual :math:`F(u, m; v)` of the weak form; everything else (the
operator, Newton's Jacobian, the adjoint operator, the derivative with respect to the
parameter) is derived from it symbolically, so there is one mechanism for adjoints
whatever the physics. :mod:`invprior.pde.forms` holds ready residuals.

:class:`~invprior.pde.SourceProblem` and :class:`~invprior.pde.ConductivityProblem` stay
hand-written (their documented numbers are theirs); the tests prove that this class with
their forms (:func:`~invprior.pde.forms.source_form`,
:func:`~invprior.pde.forms.conductivity_form`) gives the same observations and gradients
to 1e-10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from petsc4py import PETSc

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.mesh
import numpy as np
import ufl
from ufl.algorithms import expand_derivatives

from .base import AffineForwardModel, CachedState, ForwardModel, SolveCounter
from .boundary import Marker, Value, as_coefficient, dirichlet_bcs, neumann_form
from .compat import create_vector
from .errors import PDESolveError
from .forms import Residual, check_form_tags, check_tags, depends, uniform_degree
from .mesh import BBox, mesh_bbox
from .observation import PointSensors
from .problem import EllipticProblem, assemble_dual, assemble_lifted_rhs
from .solver import LinearSolver, solver_options
from .transfer import GridTransfer

__all__ = ["AffineVariationalProblem", "VariationalProblem"]

#: Newton's defaults (SNES line-search Newton); ``newton_options`` override them key by key.
NEWTON_OPTIONS: dict[str, object] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_atol": 1e-12,
    "snes_max_it": 50,
}

# Preset keys that change for a non-symmetric operator: LU instead of Cholesky, GMRES
# (right-preconditioned, so the true residual is the one monitored) instead of CG.
_NONSYMMETRIC = {
    "direct": {"pc_type": "lu"},
    "iterative": {"ksp_type": "gmres", "ksp_pc_side": "right"},
}

_SNES_REASONS = {
    int(getattr(PETSc.SNES.ConvergedReason, name)): name
    for name in dir(PETSc.SNES.ConvergedReason)
    if name.isupper()
}


class VariationalProblem(CachedState, ForwardModel):
    r"""Point observations of the solution of any elliptic residual form :math:`F(u, m; v)`.

    With :math:`m_h = T m \in Q` (bilinear transfer of the grid field to P1), find
    :math:`u_h \in V`, :math:`u_h = g` on :math:`\Gamma_D`, such that

    .. math::

        F(u_h, m_h; v) - \sum_k \int_{\Gamma_{N,k}} g_k v \, ds
        + \sum_k \int_{\Gamma_{R,k}} \alpha_k (u_h - g_k) v \, ds = 0
        \quad \forall v \in V_0,

    and observe :math:`y = B u_h`. Write the whole physics in ``residual(u, m, v)``, any
    transform of the parameter (:math:`\kappa = e^m`) included; the Neumann and Robin data
    prescribe the conormal flux of that form. For a cotangent :math:`\bar y` the adjoint
    state and the gradient are

    .. math::

        \Big(\frac{\partial F}{\partial u}\Big)^T \lambda = P B^T \bar y, \qquad
        \bar m = -T^T \Big(\frac{\partial F}{\partial m}\Big)^T \lambda,

    with the adjoint operator assembled from ``ufl.adjoint(ufl.derivative(F, u))`` at the
    forward state and :math:`P` zeroing the Dirichlet rows. All forms share the quadrature
    rule estimated for the residual, so the gradient is exact for the discrete model.

    The form is analysed once, at construction:

    - **linear in** :math:`u` (the Jacobian does not depend on :math:`u`): one linear solve
      per field, :math:`A(m) u = -F(0, m)`; if :math:`A` does not depend on :math:`m` it is
      assembled and factorised once. Otherwise Newton's method (DOLFINx's
      :class:`~dolfinx.fem.petsc.NonlinearProblem`, PETSc SNES) from :math:`u = 0`, so a
      solve depends on its field only.
    - **symmetric** operator (checked numerically on one assembled operator): the
      ``solver`` preset as is (MUMPS Cholesky or CG) and the adjoint reuses the forward
      operator and its factorisation. Non-symmetric: LU or GMRES, and the adjoint operator
      is assembled and factorised on its own (once when fixed).
    - **affine** map :math:`m \mapsto y` (linear in :math:`u`, fixed operator,
      :math:`\partial F / \partial m` independent of :math:`m`): the instance is an
      :class:`AffineVariationalProblem`, whose dense map
      ``invprior.bridge.DenseObservationMap`` applies.

    The last forward state is cached: :meth:`vjp` at the field of the last :meth:`forward`
    costs one adjoint solve.

    Collective on the mesh's communicator (every method).

    Args:
        space: State space ``V`` (Lagrange P1 or P2), or a mesh (then P1).
        residual: ``residual(u, m, v) -> ufl.Form``, linear in the test function ``v``;
            ``u`` is the state (a Function of ``V``), ``m`` the parameter (a P1 Function).
        sensors: :class:`PointSensors` on ``V`` or points, shape ``(n_obs, 2|3)``.
        grid_shape: ``(ny, nx)`` of the parameter field.
        grid_bbox: Bounding box of the grid; default the mesh's.
        dirichlet: ``(marker, g)`` pairs; default ``u = 0`` on the whole boundary; ``()``
            for none (then Robin data or a reaction term must make the operator regular).
        neumann: ``(marker, g)`` pairs: the form's conormal flux equals ``g``.
        robin: ``(marker, alpha, g)`` triples: the conormal flux equals
            :math:`\alpha (g - u)`.
        facet_tags: Facet tags for integer markers.
        linear: Declare the form linear in ``u`` (``True`` is checked against the form;
            ``False`` forces Newton); default detected.
        symmetric: Declare the operator symmetric (``True`` is checked; ``False`` forces
            LU/GMRES); default detected.
        affine: ``False`` keeps a plain :class:`VariationalProblem` for an affine map;
            ``True`` is checked against the form; default detected.
        petsc_options: Overrides of the options of the ``solver`` preset (linear solves).
        newton_options: Overrides of :data:`NEWTON_OPTIONS` and of the Jacobian solver's
            options (``ksp_*``, ``pc_*``) for Newton's method.
        petsc_options_prefix: Unique PETSc options prefix.
        solver: ``"direct"`` (MUMPS Cholesky, LU for a non-symmetric operator) or
            ``"iterative"`` (CG, GMRES for a non-symmetric operator, with GAMG).

    Raises:
        TypeError: If ``residual`` does not return a UFL form.
        ValueError: A residual that is not linear in ``v`` alone, that does not contain
            ``u`` or ``m``, a facet tag that marks no facet, a declaration that the form
            contradicts, or Cholesky/CG requested for a non-symmetric operator.

    Example:
        >>> from mpi4py import MPI
        >>> import numpy as np
        >>> import ufl
        >>> from invprior.pde import VariationalProblem, unit_square
        >>> def advection_diffusion(u, m, v):  # -div(grad u) + w . grad u = m
        ...     w = ufl.as_vector((4.0, 0.0))
        ...     return (ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.dot(w, ufl.grad(u)) * v
        ...             - m * v) * ufl.dx
        >>> problem = VariationalProblem(
        ...     unit_square(MPI.COMM_WORLD, 8), advection_diffusion, [[0.5, 0.5]], (9, 9))
        >>> problem.linear, problem.symmetric, problem.affine
        (True, False, True)
        >>> y = problem.forward(np.ones((9, 9)))
        >>> bool(0.05 < y[0] < 0.08)
        True
    """

    def __init__(
        self,
        space: dolfinx.fem.FunctionSpace | dolfinx.mesh.Mesh,
        residual: Residual,
        sensors: PointSensors | np.ndarray,
        grid_shape: tuple[int, int],
        grid_bbox: BBox | None = None,
        *,
        dirichlet: Sequence[tuple[Marker, Value]] | None = None,
        neumann: Sequence[tuple[Marker, Value]] = (),
        robin: Sequence[tuple[Marker, Value, Value]] = (),
        facet_tags: dolfinx.mesh.MeshTags | None = None,
        linear: bool | None = None,
        symmetric: bool | None = None,
        affine: bool | None = None,
        petsc_options: Mapping[str, object] | None = None,
        newton_options: Mapping[str, object] | None = None,
        petsc_options_prefix: str = "invprior_variational_",
        solver: str = "direct",
    ) -> None:
        solver_options(solver)  # reject an unknown preset before any assembly
        if isinstance(space, dolfinx.mesh.Mesh):
            space = dolfinx.fem.functionspace(space, ("Lagrange", 1))
        V, mesh = space, space.mesh
        self.V, self.comm, self.name = V, mesh.comm, "VariationalProblem"
        degree = V.element.basix_element.degree
        self.Q = V if degree == 1 else dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        if not isinstance(sensors, PointSensors):
            sensors = PointSensors(V, sensors)
        elif sensors.V is not V:
            raise ValueError("sensors were built on another function space; pass the points")
        self.sensors, self.n_obs = sensors, sensors.n_obs
        bbox = mesh_bbox(mesh) if grid_bbox is None else grid_bbox
        self.transfer = GridTransfer(self.Q, grid_shape, bbox)
        self.grid_shape, self.grid_bbox = self.transfer.grid_shape, self.transfer.grid_bbox
        self.counter = SolveCounter()
        dirichlet = [(None, 0.0)] if dirichlet is None else list(dirichlet)
        markers = [d[0] for d in dirichlet] + [n[0] for n in neumann] + [r[0] for r in robin]
        check_tags(markers, facet_tags, self.comm)
        self.bcs = dirichlet_bcs(V, dirichlet, facet_tags) if dirichlet else []
        bc_dofs = [bc.dof_indices()[0] for bc in self.bcs]
        bc_dofs = np.unique(np.concatenate(bc_dofs)) if bc_dofs else np.zeros(0, np.int32)
        self._bc_owned = bc_dofs[bc_dofs < V.dofmap.index_map.size_local]

        self.u = dolfinx.fem.Function(V, name="u")
        self.m = dolfinx.fem.Function(self.Q, name="m")
        self.lam = dolfinx.fem.Function(V, name="lambda")
        v, du = ufl.TestFunction(V), ufl.TrialFunction(V)
        F = self._user_form(residual, v)
        check_form_tags(F, self.comm)
        fluxes = list(neumann)  # a Robin condition is the flux alpha (g - u)
        for marker, alpha, g in robin:
            alpha_h, g_h = as_coefficient(V, alpha, "Robin alpha"), as_coefficient(V, g, "Robin g")
            fluxes.append((marker, alpha_h * (g_h - self.u)))
        boundary = neumann_form(V, fluxes, facet_tags)
        F = uniform_degree(F if boundary is None else F - boundary)
        self.residual = F
        J = expand_derivatives(ufl.derivative(F, self.u, du))
        self._adjoint_form = ufl.adjoint(J)
        dFdm = expand_derivatives(ufl.derivative(F, self.m, ufl.TrialFunction(self.Q)))
        grad = -ufl.derivative(ufl.replace(F, {v: self.lam}), self.m, ufl.TestFunction(self.Q))
        self._grad_form = dolfinx.fem.form(grad)

        self.linear = self._declared("linear", linear, not depends(J, self.u))
        self.fixed_operator = self.linear and not depends(J, self.m)
        is_affine = self.fixed_operator and not (depends(dFdm, self.m) or depends(dFdm, self.u))
        self.affine = self._declared("affine", affine, is_affine)
        # The gradient needs the forward state when it or the adjoint operator involves u or m.
        self._needs_state = not self.fixed_operator or depends(grad, self.m)

        self._prefix, self._preset = petsc_options_prefix, solver
        self._A_adj: PETSc.Mat | None = None
        self._M: PETSc.Mat | None = None  # dF/dm of an affine problem
        self._dFdm = dFdm
        self._adj_solver: LinearSolver | None = None
        self._rhs, self._grad = create_vector(V), create_vector(self.Q)
        if self.linear:
            self._init_linear(F, J, symmetric, petsc_options)
        else:
            self._init_newton(F, J, symmetric, petsc_options, newton_options)
        if self.affine and type(self) is VariationalProblem:
            self.__class__ = AffineVariationalProblem

    # -- construction ---------------------------------------------------------------------

    def _user_form(self, residual: Residual, v: ufl.Argument) -> ufl.Form:
        F = residual(self.u, self.m, v)
        if not isinstance(F, ufl.Form):
            raise TypeError(
                f"residual(u, m, v) must return a UFL form (an expression times ufl.dx), "
                f"got {type(F).__name__}"
            )
        if F.arguments() != (v,):
            got = [f"{type(a).__name__} number {a.number()}" for a in F.arguments()]
            raise ValueError(
                f"the residual must be a scalar form linear in the test function v alone "
                f"(F(u, m; v)), but its arguments are {got or 'none'}; multiply every term by "
                "v (or its gradient) and write the state as u, not as a TrialFunction"
            )
        for f, what in ((self.u, "state u"), (self.m, "parameter m")):
            if f not in F.coefficients():
                raise ValueError(
                    f"the {what} does not appear in the residual; write the form with the "
                    "u and m passed to residual(u, m, v)"
                )
        return F

    def _declared(self, name: str, declared: bool | None, detected: bool) -> bool:
        if declared and not detected:
            raise ValueError(
                f"{name}=True was declared but the residual form is not {name}; "
                f"drop the declaration (it is detected) or fix the form"
            )
        return detected if declared is None else bool(declared)

    def _check_operator(self, A: PETSc.Mat, declared: bool | None) -> bool:
        """Whether ``A`` (the operator at one state) is symmetric, to round-off.

        Without Dirichlet conditions, also rejects an operator that maps constants to zero
        (a pure Neumann problem): its solves would return garbage, not fail.
        """
        tol = 1e-12 * max(A.norm(PETSc.NormType.INFINITY), 1e-300)
        if not self.bcs:
            ones, image = A.createVecs()
            ones.set(1.0)
            A.mult(ones, image)
            singular = image.norm(PETSc.NormType.INFINITY) <= tol
            for vec in (ones, image):
                vec.destroy()
            if singular:
                raise ValueError(
                    "the operator is singular: it maps constant states to zero (a pure "
                    "Neumann problem). Give a Dirichlet part (dirichlet=[(marker, g)]), "
                    "Robin data or a reaction term"
                )
        found = bool(A.isSymmetric(tol))
        symmetric = self._declared("symmetric", declared, found)
        if symmetric:
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        return symmetric

    def _options(self, user: Mapping[str, object] | None) -> dict[str, object]:
        """Solver overrides for this operator; refuses Cholesky or CG on a non-symmetric one."""
        extra = {} if self.symmetric else _NONSYMMETRIC[self._preset]
        overrides = {**extra, **(user or {})}
        merged = solver_options(self._preset, overrides)
        if not self.symmetric and (
            merged.get("pc_type") == "cholesky" or merged.get("ksp_type") == "cg"
        ):
            raise ValueError(
                f"the operator is not symmetric, but the solver options ask for "
                f"pc_type={merged.get('pc_type')!r}, ksp_type={merged.get('ksp_type')!r}; "
                "use LU (pc_type='lu') or GMRES (ksp_type='gmres')"
            )
        return overrides

    def _linear_solver(self, A: PETSc.Mat, options: dict[str, object]) -> LinearSolver:
        return LinearSolver(self.comm, A, options, self._prefix, self.name, self._preset)

    def _init_linear(
        self,
        F: ufl.Form,
        J: ufl.Form,
        symmetric: bool | None,
        petsc_options: Mapping[str, object] | None,
    ) -> None:
        self._a = dolfinx.fem.form(J)
        zero = dolfinx.fem.Constant(self.V.mesh, PETSc.ScalarType(0.0))
        v = ufl.TestFunction(self.V)
        self._L = dolfinx.fem.form(-ufl.replace(F, {self.u: zero}) + zero * v * ufl.dx)
        self.A = dolfinx.fem.petsc.create_matrix(self._a)
        self._probe()
        self._assemble_matrix(self.A, self._a)
        self.symmetric = self._check_operator(self.A, symmetric)
        options = self._options(petsc_options)
        self._solver = self._linear_solver(self.A, options)
        if not self.symmetric:
            self._adj_a = dolfinx.fem.form(self._adjoint_form)
            self._A_adj = dolfinx.fem.petsc.create_matrix(self._adj_a)
            self._adj_solver = self._linear_solver(self._A_adj, options)
        if self.affine:  # F(u, m) = A u + M m + F(0, 0): assemble M and the offset once
            self._M = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(self._dFdm))
            self._M.assemble()
            self.m.x.array[:] = 0.0
            self._b0 = self._assemble_rhs(create_vector(self.V))
            self._q = create_vector(self.Q)
        if self.fixed_operator:
            self._solver.set_up()
            if self._A_adj is not None:
                self._assemble_matrix(self._A_adj, self._adj_a)
                self._adj_solver.set_up()

    def _init_newton(
        self,
        F: ufl.Form,
        J: ufl.Form,
        symmetric: bool | None,
        petsc_options: Mapping[str, object] | None,
        newton_options: Mapping[str, object] | None,
    ) -> None:
        self._adj_a = dolfinx.fem.form(self._adjoint_form)
        self._A_adj = dolfinx.fem.petsc.create_matrix(self._adj_a)
        self._probe()
        self._assemble_matrix(self._A_adj, self._adj_a)
        self.symmetric = self._check_operator(self._A_adj, symmetric)
        self._adj_solver = self._linear_solver(self._A_adj, self._options(petsc_options))
        ksp = solver_options(self._preset, self._options(None))
        options = {**ksp, **NEWTON_OPTIONS, **(newton_options or {})}
        if not self.symmetric and options.get("pc_type") == "cholesky":
            raise ValueError("the Jacobian is not symmetric; use pc_type='lu' in newton_options")
        self._newton = dolfinx.fem.petsc.NonlinearProblem(
            F, self.u, bcs=self.bcs, J=J, petsc_options=options,
            petsc_options_prefix=f"{self._prefix}newton_",
        )  # fmt: skip
        if self.symmetric:
            self._newton.A.setOption(PETSc.Mat.Option.SYMMETRIC, True)

    def _probe(self) -> None:
        """A fixed, generic state and parameter for the symmetry check (not a solution)."""
        for f in (self.u, self.m):
            x = f.function_space.tabulate_dof_coordinates()
            f.x.array[:] = 0.3 + 0.2 * np.sin(3.1 * x[:, 0] + 1.7 * x[:, 1])

    # -- assembly and solves --------------------------------------------------------------

    def _assemble_matrix(self, A: PETSc.Mat, a: dolfinx.fem.Form) -> None:
        A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(A, a, bcs=self.bcs)
        A.assemble()

    def _set_parameter(self, field: np.ndarray) -> None:
        self._forget_state()
        self.m.x.array[: self.transfer.n_owned] = self.transfer.apply(field)
        self.m.x.scatter_forward()

    def _assemble_rhs(self, b: PETSc.Vec) -> PETSc.Vec:
        """:math:`-F(0, m)` with the Dirichlet lifting and values, into ``b``."""
        return assemble_lifted_rhs(b, self._L, self._a, self.bcs)

    def _solve_linear(self) -> None:
        if not self.fixed_operator:
            self._assemble_matrix(self.A, self._a)
        if self._M is None:
            b = self._assemble_rhs(self._rhs)
        else:  # b = -M m + b0, as the source problem does
            b = self._rhs
            self._M.mult(self.m.x.petsc_vec, b)
            b.scale(-1.0)
            b.array[self._bc_owned] = 0.0
            b.axpy(1.0, self._b0)
        self._solver.solve(b, self.u.x.petsc_vec, "forward")

    def _solve_newton(self) -> None:
        self.u.x.array[:] = 0.0
        snes = self._newton.solver
        try:
            self._newton.solve()
            detail = ""
        except PETSc.Error as err:
            detail = f" (PETSc error {err.ierr} in the Jacobian solve)"
        code = int(snes.getConvergedReason())
        bad = self.comm.allreduce(int(np.count_nonzero(~np.isfinite(self.u.x.array))))
        if detail or code <= 0 or bad:
            raise PDESolveError(
                f"{self.name}: Newton's method did not converge: SNES converged reason "
                f"{_SNES_REASONS.get(code, 'UNKNOWN')} ({code}) after {snes.getIterationNumber()} "
                f"iteration(s){detail}{f', {bad} NaN/inf value(s)' if bad else ''}. Check the "
                "field's range, or raise snes_max_it / choose a line search in newton_options"
            )

    def solve_forward(self, field: np.ndarray) -> dolfinx.fem.Function:
        """Solve for the state with parameter ``field`` (a linear solve or Newton).

        Args:
            field: Parameter on the grid, shape ``grid_shape``.

        Returns:
            The state ``self.u`` (overwritten by the next solve).

        Raises:
            ValueError: If ``field`` has the wrong shape or non-finite values.
            PDESolveError: If the solve fails.
        """
        field = self.check_field(field)
        self._set_parameter(field)
        self._solve_linear() if self.linear else self._solve_newton()
        self.counter.forward += 1
        self.u.x.scatter_forward()
        self._keep_state(field, self.sensors.observe(self.u))
        return self.u

    def solve_adjoint(self, obs_cotangent: np.ndarray) -> dolfinx.fem.Function:
        r"""Adjoint solve :math:`(\partial F/\partial u)^T \lambda = P B^T \bar y`.

        At the current state and parameter (those of the last forward solve).

        Args:
            obs_cotangent: Observation cotangent, shape ``(n_obs,)``.

        Returns:
            The adjoint state ``self.lam`` (ghosts updated).

        Raises:
            PDESolveError: If the solve fails.
        """
        b = self.sensors.adjoint_rhs(self.check_cotangent(obs_cotangent), self._rhs)
        b.array[self._bc_owned] = 0.0
        if self._adj_solver is None:  # symmetric and linear: the forward factorisation
            self._solver.solve(b, self.lam.x.petsc_vec, "adjoint")
        else:
            if not self.fixed_operator:
                self._assemble_matrix(self._A_adj, self._adj_a)
            self._adj_solver.solve(b, self.lam.x.petsc_vec, "adjoint")
        self.counter.adjoint += 1
        self.lam.x.scatter_forward()
        return self.lam

    def vjp(self, field: np.ndarray, obs_cotangent: np.ndarray) -> np.ndarray:
        r""":math:`\bar m = -T^T (\partial F/\partial m)^T \lambda`, shape ``grid_shape``.

        One adjoint solve, plus a forward solve when the gradient needs the state and
        ``field`` differs from the cached one.
        """
        field = self.check_field(field)
        if self._needs_state:
            self._ensure_state(field)
        return self._field_cotangent(self.solve_adjoint(obs_cotangent))

    def _field_cotangent(self, lam: dolfinx.fem.Function) -> np.ndarray:
        if self._M is not None:
            self._M.multTranspose(lam.x.petsc_vec, self._q)
            return -self.transfer.apply_transpose(self._q.array)
        g = assemble_dual(self._grad, self._grad_form)
        return self.transfer.apply_transpose(g.array[: self.transfer.n_owned])

    # The input checks of the built-in models, shared rather than written twice.
    check_field = EllipticProblem.check_field
    check_cotangent = EllipticProblem.check_cotangent

    def destroy(self) -> None:
        """Free the PETSc objects. Collective on ``comm``."""
        for obj in (self._rhs, self._grad, self._A_adj, self._adj_solver):
            if obj is not None:
                obj.destroy()
        if self.linear:
            self._solver.destroy()
            self.A.destroy()
        if self._M is not None:
            for obj in (self._M, self._b0, self._q):
                obj.destroy()


class AffineVariationalProblem(VariationalProblem, AffineForwardModel):
    r"""A :class:`VariationalProblem` whose map :math:`m \mapsto y` is affine.

    :class:`VariationalProblem` returns an instance of this class when its analysis finds
    the map affine (linear in :math:`u`, fixed operator, :math:`\partial F/\partial m`
    independent of :math:`m`); build it the same way.
    """

    def affine_map(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(F, c)`` with forward(m) :math:`= F m + c`, replicated on every rank.

        Row :math:`k` of :math:`F` is the gradient of :math:`y_k` (one adjoint solve each);
        :math:`c` the observations of a zero field (one forward solve). Each call solves
        again: keep the result (``invprior.bridge.DenseObservationMap`` does).
        """
        rows = [self._field_cotangent(self.solve_adjoint(e)).ravel() for e in np.eye(self.n_obs)]
        offset = self.forward(np.zeros(self.grid_shape))
        return np.stack(rows), offset
