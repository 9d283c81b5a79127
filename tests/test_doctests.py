# SPDX-License-Identifier: MIT
"""Run the examples in the docstrings of every module of the package."""

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("invprior", "invprior.pde", "invprior.priors")
MODULES = sorted(
    {
        info.name
        for package in PACKAGES
        for info in pkgutil.walk_packages(
            importlib.import_module(package).__path__, prefix=f"{package}."
        )
    }
    | set(PACKAGES)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.startswith("invprior.pde"):
        pytest.importorskip("dolfinx_solver", reason="DOLFINx wheel not installed")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
