# SPDX-License-Identifier: MIT
import numpy as np
import pytest

pytestmark = pytest.mark.dolfinx


def test_complex_petsc_is_rejected(monkeypatch):
    from petsc4py import PETSc

    from invprior.pde import compat

    monkeypatch.setattr(PETSc, "ScalarType", np.complex128)
    with pytest.raises(compat.ComplexPETScError, match="dolfinx-solver-real"):
        compat.require_real_petsc()


def test_create_vector_and_geometry_maps(comm):
    import dolfinx.fem

    from invprior.pde import compat, unit_square

    mesh = unit_square(comm, 2)
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    vec = compat.create_vector(V)
    assert vec.getSize() == V.dofmap.index_map.size_global
    vec.destroy()
    dofmap, cmap = compat.geometry_maps(mesh)
    assert dofmap.shape[1] == 3 and cmap.dim == 3
