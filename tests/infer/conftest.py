# SPDX-License-Identifier: MIT
"""Fixtures for inference tests."""

import pytest

from invprior.pde.errors import PDESolveError


@pytest.fixture
def pde_solve_error():
    """The PDE solver-failure exception, :class:`invprior.pde.errors.PDESolveError`."""
    return PDESolveError
