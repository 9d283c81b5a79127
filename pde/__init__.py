# SPDX-License-Identifier: MIT
"""Finite-element forward models (DOLFINx, PETSc), installed as :mod:`invprior.pde`."""

from .base import ForwardModel, SolveCounter

__all__ = ["ForwardModel", "SolveCounter"]
