# SPDX-License-Identifier: MIT
import numpy as np
import pytest

pytestmark = pytest.mark.dolfinx


def _space(comm, n=8, degree=1):
    import dolfinx.fem

    from invprior.pde import unit_square

    return dolfinx.fem.functionspace(unit_square(comm, n), ("Lagrange", degree))


def _linear(V):
    import dolfinx.fem

    u = dolfinx.fem.Function(V)
    u.interpolate(lambda x: 1.0 + x[0] + 2.0 * x[1])
    return u


def test_grid_sensors_layout():
    from invprior.pde import grid_sensors

    pts = grid_sensors(((0.0, 0.0), (1.0, 1.0)), 8)
    assert pts.shape == (64, 2)
    assert pts.min() == pytest.approx(1 / 9) and pts.max() == pytest.approx(8 / 9)
    np.testing.assert_allclose(pts[:2, 1], [1 / 9, 1 / 9])


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
def test_every_point_owned_exactly_once(comm, degree):
    """Sensors on vertices and edges shared by ranks are counted once (a linear u is exact)."""
    from invprior.pde import PointSensors

    V = _space(comm, degree=degree)
    pts = np.array([[i / 8, j / 8] for i in range(9) for j in range(9)] + [[0.37, 0.81]])
    sensors = PointSensors(V, pts)
    owned = np.concatenate(comm.allgather(sensors.owned))
    np.testing.assert_array_equal(np.sort(owned), np.arange(len(pts)))
    np.testing.assert_allclose(
        sensors.observe(_linear(V)), 1.0 + pts[:, 0] + 2.0 * pts[:, 1], atol=1e-12
    )


@pytest.mark.mpi
def test_adjoint_rhs_is_transpose(comm):
    from mpi4py import MPI

    import dolfinx.fem

    from invprior.pde import PointSensors, grid_sensors

    V = _space(comm)
    sensors = PointSensors(V, grid_sensors(((0.0, 0.0), (1.0, 1.0)), 3))
    u = dolfinx.fem.Function(V)
    rng = np.random.default_rng(2)
    u.x.array[:] = rng.standard_normal(u.x.array.size)
    u.x.scatter_forward()
    cot = np.random.default_rng(3).standard_normal(9)
    b = sensors.adjoint_rhs(cot)
    n_owned = V.dofmap.index_map.size_local
    lhs = comm.allreduce(float(b.array @ u.x.array[:n_owned]), op=MPI.SUM)
    b.destroy()
    assert lhs == pytest.approx(float(cot @ sensors.observe(u)), rel=1e-12)


def test_points_outside_mesh_are_all_named(comm):
    from invprior.pde import PointSensors, SensorOutsideMeshError

    pts = [[0.5, 0.5], [1.5, 0.5], [0.2, 0.2], [-0.1, 2.0]]
    with pytest.raises(SensorOutsideMeshError, match=r"2 sensor point\(s\)") as info:
        PointSensors(_space(comm), pts)
    assert info.value.indices == [1, 3]
    assert "#1 (1.5, 0.5)" in str(info.value) and "#3 (-0.1, 2)" in str(info.value)


@pytest.mark.parametrize("points", [np.zeros((3,)), np.zeros((0, 2)), [[np.nan, 0.5]]])
def test_bad_points_are_rejected(comm, points):
    from invprior.pde import PointSensors

    with pytest.raises(ValueError, match="points must"):
        PointSensors(_space(comm), points)
