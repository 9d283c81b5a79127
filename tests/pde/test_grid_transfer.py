# SPDX-License-Identifier: MIT
import numpy as np
import pytest

pytestmark = pytest.mark.dolfinx

UNIT = ((0.0, 0.0), (1.0, 1.0))


def _space(comm, n=6, degree=1):
    import dolfinx.fem

    from invprior.pde import unit_square

    return dolfinx.fem.functionspace(unit_square(comm, n), ("Lagrange", degree))


def _grid_values(shape, bbox, fn):
    (x0, y0), (x1, y1) = bbox
    ys, xs = np.linspace(y0, y1, shape[0]), np.linspace(x0, x1, shape[1])
    gx, gy = np.meshgrid(xs, ys)
    return fn(gx, gy)


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
def test_bilinear_function_is_reproduced(comm, degree):
    from invprior.pde import GridTransfer

    V = _space(comm, degree=degree)
    bbox = ((-0.5, -0.25), (1.5, 1.25))
    T = GridTransfer(V, (7, 5), bbox)
    fn = lambda x, y: 1.0 + 2.0 * x - 3.0 * y + 0.5 * x * y  # noqa: E731
    owned = V.tabulate_dof_coordinates()[: T.n_owned]
    np.testing.assert_allclose(
        T.apply(_grid_values((7, 5), bbox, fn)), fn(owned[:, 0], owned[:, 1]), atol=1e-12
    )


@pytest.mark.mpi
def test_transpose_is_adjoint(comm):
    from mpi4py import MPI

    from invprior.pde import GridTransfer

    T = GridTransfer(_space(comm), (4, 5), UNIT)
    rng = np.random.default_rng(1)
    field = rng.standard_normal((4, 5))
    cot = rng.standard_normal(T.n_owned)
    lhs = comm.allreduce(float(T.apply(field) @ cot), op=MPI.SUM)
    rhs = float(np.sum(field * T.apply_transpose(cot)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_grid_not_covering_mesh_is_rejected(comm):
    from invprior.pde import GridTransfer

    with pytest.raises(ValueError, match="does not cover the mesh"):
        GridTransfer(_space(comm), (8, 8), ((0.0, 0.0), (0.5, 1.0)))


@pytest.mark.parametrize(
    ("shape", "bbox", "match"),
    [((1, 4), UNIT, "at least"), ((4, 4), ((1.0, 0.0), (0.0, 1.0)), "xmax > xmin")],
)
def test_bad_grid_is_rejected(comm, shape, bbox, match):
    from invprior.pde import GridTransfer

    with pytest.raises(ValueError, match=match):
        GridTransfer(_space(comm), shape, bbox)
