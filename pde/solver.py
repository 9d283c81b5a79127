# SPDX-License-Identifier: MIT
"""A PETSc KSP for one symmetric operator, with failures turned into :class:`PDESolveError`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

from .errors import PDESolveError

__all__ = ["DEFAULT_PETSC_OPTIONS", "LinearSolver"]

logger = logging.getLogger(__name__)

#: MUMPS Cholesky; a KSP that does not converge raises instead of returning garbage.
DEFAULT_PETSC_OPTIONS: dict[str, object] = {
    "ksp_type": "preonly",
    "pc_type": "cholesky",
    "pc_factor_mat_solver_type": "mumps",
    "ksp_error_if_not_converged": True,
}

_KSP_REASONS = {
    int(getattr(PETSc.KSP.ConvergedReason, name)): name
    for name in dir(PETSc.KSP.ConvergedReason)
    if name.isupper()
}


class LinearSolver:
    """Solves :math:`A x = b` with a KSP configured from an options dict.

    The options (defaults :data:`DEFAULT_PETSC_OPTIONS`, overridden key by key) are set
    under ``prefix`` in PETSc's options database, read once, then removed, as
    :class:`dolfinx.fem.petsc.LinearProblem` does.

    Collective on ``comm``.

    Args:
        comm: Communicator of the operator.
        A: Assembled operator; its values may change between solves (the KSP then sets
            itself up again, reusing the symbolic factorisation).
        petsc_options: Overrides of the default options, or ``None``.
        prefix: Options prefix, e.g. ``"invprior_source_"``.
        name: Problem name used in error messages.
    """

    def __init__(
        self,
        comm: MPI.Comm,
        A: PETSc.Mat,
        petsc_options: Mapping[str, object] | None,
        prefix: str,
        name: str,
    ) -> None:
        if not prefix or not prefix.endswith("_"):
            raise ValueError(
                f"petsc_options_prefix must be non-empty and end in '_', got {prefix!r}"
            )
        self.name = name
        self.comm = comm
        self.ksp = PETSc.KSP().create(comm)
        self.ksp.setOperators(A)
        self.ksp.setOptionsPrefix(prefix)
        options = PETSc.Options()
        merged = {**DEFAULT_PETSC_OPTIONS, **(petsc_options or {})}
        for key, value in merged.items():
            options[f"{prefix}{key}"] = value
        self.ksp.setFromOptions()
        for key in merged:
            del options[f"{prefix}{key}"]

    def set_up(self) -> None:
        """Factorise (or otherwise set up the preconditioner) now, not at the first solve.

        Raises:
            PDESolveError: If the factorisation fails.
        """
        try:
            self.ksp.setUp()
        except PETSc.Error as err:
            raise PDESolveError(
                f"{self.name}: setting up the solver (factorisation) failed, PETSc error "
                f"{err.ierr}; PC failed reason {self.ksp.getPC().getFailedReason()}"
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
