# SPDX-License-Identifier: MIT
"""Imports go one way: pde/ never imports torch, priors/ never dolfinx or mpi4py."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "pde": {"torch", "pyro", "invprior.priors"},
    "priors": {"dolfinx", "mpi4py", "petsc4py", "basix", "ufl", "invprior.pde"},
}


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_static_imports(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "absent"),
    [("invprior.pde", ["torch", "pyro"]), ("invprior.priors", ["dolfinx", "mpi4py", "petsc4py"])],
)
def test_runtime_imports(module, absent):
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
