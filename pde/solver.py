# SPDX-License-Identifier: MIT
"""A PETSc KSP for one symmetric operator, with failures turned into :class:`PDESolveError`.

Two presets, chosen by name with ``solver=`` on the forward models: ``"direct"`` (MUMPS
Cholesky, :data:`DEFAULT_PETSC_OPTIONS`, the default) and ``"iterative"`` (conjugate
gradients with algebraic multigrid, :data:`ITERATIVE_PETSC_OPTIONS`, for meshes too large
to factorise). ``petsc_options`` override a preset key by key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

from .errors import PDESolveError

__all__ = [
    "DEFAULT_PETSC_OPTIONS",
    "ITERATIVE_PETSC_OPTIONS",
    "SOLVER_PRESETS",
    "LinearSolver",
    "solver_options",
]

logger = logging.getLogger(__name__)

#: MUMPS Cholesky; a KSP that does not converge raises instead of returning garbage.
DEFAULT_PETSC_OPTIONS: dict[str, object] = {
    "ksp_type": "preonly",
    "pc_type": "cholesky",
    "pc_factor_mat_solver_type": "mumps",
    "ksp_error_if_not_converged": True,
}

#: CG preconditioned by PETSc's smoothed-aggregation multigrid (GAMG; this PETSc has no
#: hypre). The relative tolerance is on the true residual, :math:`\|b - A x\| \le
#: 10^{-10} \|b\|`: observations then agree with the direct solve to about
#: :math:`10^{-12}` relative on the test meshes, far below the finite-difference steps of a
#: Taylor test, so the adjoint gradient stays consistent (remainder rate 2). The multigrid
#: hierarchy is rebuilt for every new operator (no reuse of the interpolation of an earlier
#: field), so a solve depends on its field only and not on the fields solved before; pass
#: ``{"pc_gamg_reuse_interpolation": True}`` to trade that for a cheaper set-up.
ITERATIVE_PETSC_OPTIONS: dict[str, object] = {
    "ksp_type": "cg",
    "ksp_norm_type": "unpreconditioned",
    "ksp_rtol": 1e-10,
    "pc_type": "gamg",
    "pc_gamg_reuse_interpolation": False,
    "ksp_error_if_not_converged": True,
}

#: The named solver presets accepted by ``solver=``.
SOLVER_PRESETS: dict[str, dict[str, object]] = {
    "direct": DEFAULT_PETSC_OPTIONS,
    "iterative": ITERATIVE_PETSC_OPTIONS,
}

_KSP_REASONS = {
    int(getattr(PETSc.KSP.ConvergedReason, name)): name
    for name in dir(PETSc.KSP.ConvergedReason)
    if name.isupper()
}


def solver_options(
    solver: str, petsc_options: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The options of a named preset with ``petsc_options`` laid over it.

    Args:
        solver: ``"direct"`` (MUMPS Cholesky) or ``"iterative"`` (CG + GAMG).
        petsc_options: Overrides, key by key, or ``None``.

    Returns:
        A new dict of PETSc options (keys without prefix).

    Raises:
        ValueError: If ``solver`` names no preset.
    """
    if solver not in SOLVER_PRESETS:
        raise ValueError(
            f"solver must be one of {sorted(SOLVER_PRESETS)}, got {solver!r}; "
            "fine-tune either preset with petsc_options"
        )
    return {**SOLVER_PRESETS[solver], **(petsc_options or {})}


class LinearSolver:
    """Solves :math:`A x = b` with a KSP configured from an options dict.

    The options (the preset named by ``solver``, overridden key by key by
    ``petsc_options``; see :func:`solver_options`) are set under ``prefix`` in PETSc's
    options database, read once, then removed, as :class:`dolfinx.fem.petsc.LinearProblem`
    does.

    Collective on ``comm``.

    Args:
        comm: Communicator of the operator.
        A: Assembled operator; its values may change between solves (the KSP then sets
            itself up again, reusing the symbolic factorisation of a direct solver).
        petsc_options: Overrides of the preset's options, or ``None``.
        prefix: Options prefix, e.g. ``"invprior_source_"``.
        name: Problem name used in error messages.
        solver: Preset, ``"direct"`` or ``"iterative"`` (see :data:`SOLVER_PRESETS`).

    Raises:
        ValueError: If ``prefix`` is empty or does not end in ``_``, or ``solver`` names
            no preset.
    """

    def __init__(
        self,
        comm: MPI.Comm,
        A: PETSc.Mat,
        petsc_options: Mapping[str, object] | None,
        prefix: str,
        name: str,
        solver: str = "direct",
    ) -> None:
        if not prefix or not prefix.endswith("_"):
            raise ValueError(
                f"petsc_options_prefix must be non-empty and end in '_', got {prefix!r}"
            )
        merged = solver_options(solver, petsc_options)
        self.name = name
        self.comm = comm
        self.ksp = PETSc.KSP().create(comm)
        self.ksp.setOperators(A)
        self.ksp.setOptionsPrefix(prefix)
        options = PETSc.Options()
        for key, value in merged.items():
            options[f"{prefix}{key}"] = value
        self.ksp.setFromOptions()
        for key in merged:
            del options[f"{prefix}{key}"]

    def set_up(self) -> None:
        """Factorise (or build the multigrid hierarchy) now, not at the first solve.

        Collective on ``comm``.

        Raises:
            PDESolveError: If the set-up fails.
        """
        try:
            self.ksp.setUp()
        except PETSc.Error as err:
            raise PDESolveError(
                f"{self.name}: setting up the solver (factorisation or preconditioner) failed, "
                f"PETSc error {err.ierr}; PC failed reason {self.ksp.getPC().getFailedReason()}"
            ) from err

    def solve(self, b: PETSc.Vec, x: PETSc.Vec, kind: str) -> None:
        """Solve :math:`A x = b` and check the result.

        Collective on ``comm``.

        Args:
            b: Right-hand side (owned entries assembled).
            x: Solution vector, overwritten (owned entries; ghosts are not updated).
            kind: ``"forward"`` or ``"adjoint"``, for messages.

        Raises:
            PDESolveError: If the KSP does not converge or the solution is not finite.
        """
        try:
            self.ksp.solve(b, x)
        except PETSc.Error as err:
            raise PDESolveError(self._failure(kind, f" (PETSc error {err.ierr})")) from err
        # PETSc does not raise again after a first failure of the same kind, so check too.
        if self.ksp.getConvergedReason() < 0:
            raise PDESolveError(self._failure(kind, ""))
        bad = self.comm.allreduce(int(np.count_nonzero(~np.isfinite(x.array))), op=MPI.SUM)
        if bad:
            raise PDESolveError(
                f"{self.name}: {kind} solution holds {bad} NaN/inf value(s) ({self._reason()}); "
                "the operator is probably singular or the input too extreme"
            )
        logger.debug("%s %s solve: %s", self.name, kind, self._reason())

    def _failure(self, kind: str, detail: str) -> str:
        return (
            f"{self.name}: {kind} solve failed: {self._reason()} after "
            f"{self.ksp.getIterationNumber()} iteration(s){detail}. "
            "Check the field's range or choose a more robust solver in petsc_options."
        )

    def _reason(self) -> str:
        code = int(self.ksp.getConvergedReason())
        return f"KSP converged reason {_KSP_REASONS.get(code, 'UNKNOWN')} ({code})"

    def destroy(self) -> None:
        """Free the KSP. Collective on ``comm``."""
        self.ksp.destroy()
