# SPDX-License-Identifier: MIT
"""Fixtures of the forward-model tests (helpers live in ``pde_cases.py``)."""

import pytest

import invprior.pde  # noqa: F401  (orders the MPI and PETSc bindings before DOLFINx loads)


@pytest.fixture(params=["source", "conductivity"])
def kind(request):
    return request.param
