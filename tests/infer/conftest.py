# SPDX-License-Identifier: MIT
"""Fixtures for inference tests."""

import sys
import types

import pytest


@pytest.fixture
def pde_solve_error(monkeypatch):
    """The PDE solver-failure exception (a stand-in module until the pde part provides it)."""
    try:
        from invprior.pde.errors import PDESolveError
    except ImportError:
        module = types.ModuleType("invprior.pde.errors")

        class PDESolveError(RuntimeError):
            """Stand-in for invprior.pde.errors.PDESolveError."""

        module.PDESolveError = PDESolveError
        monkeypatch.setitem(sys.modules, "invprior.pde.errors", module)
    return PDESolveError
