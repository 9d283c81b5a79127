# SPDX-License-Identifier: MIT
"""Exceptions raised by the forward models of :mod:`invprior.pde`.

This module imports neither DOLFINx nor PETSc, so callers such as the torch bridge and
the inference code can catch these errors without the ``fem`` extra installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PDESolveError", "SensorOutsideMeshError"]


class PDESolveError(RuntimeError):
    """A PDE solve failed.

    The linear solver or the factorisation did not converge, or the solution holds NaN or
    infinite values. Samplers treat this as a divergent proposal; the message names the
    solve (forward or adjoint), the problem and PETSc's converged reason.
    """


class SensorOutsideMeshError(ValueError):
    """Some sensor points lie outside the mesh.

    Attributes:
        indices: Indices of the offending points in the sensor array.
        points: Their coordinates, shape ``(len(indices), 3)``.
    """

    def __init__(self, indices: Sequence[int], points: np.ndarray) -> None:
        self.indices = [int(i) for i in indices]
        self.points = np.asarray(points, dtype=np.float64)
        listed = ", ".join(
            f"#{i} ({p[0]:.6g}, {p[1]:.6g})"
            for i, p in zip(self.indices, self.points, strict=True)
        )
        super().__init__(
            f"{len(self.indices)} sensor point(s) lie outside the mesh: {listed}. "
            "Move them inside the domain (see `grid_sensors` for an interior layout)."
        )
