# SPDX-License-Identifier: MIT
"""Grid fields written as P1 functions to XDMF, serially and on all ranks."""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.dolfinx

GRID = ((5, 6), ((0.0, 0.0), (1.0, 1.0)))


def _space_and_transfer(comm):
    import dolfinx.fem

    from invprior.pde import GridTransfer, unit_square

    V = dolfinx.fem.functionspace(unit_square(comm, 6), ("Lagrange", 1))
    return V, GridTransfer(V, *GRID)


def _shared_folder(comm, tmp_path_factory):
    """One folder for all ranks (rank 0's temporary folder)."""
    return Path(comm.bcast(str(tmp_path_factory.mktemp("xdmf")) if comm.rank == 0 else None))


@pytest.mark.mpi
def test_fields_written_and_readable(comm, tmp_path_factory):
    from invprior.pde import write_grid_functions

    V, T = _space_and_transfer(comm)
    yy, xx = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 6), indexing="ij")
    fields = {"mean": xx + 2 * yy, "std": np.ones(GRID[0])}
    path = _shared_folder(comm, tmp_path_factory) / "out" / "fields.xdmf"
    assert write_grid_functions(V, T, fields, path) == path
    comm.Barrier()
    assert path.with_suffix(".h5").is_file()
    names = {a.get("Name") for a in ET.parse(path).getroot().iter("Attribute")}
    assert names == {"mean", "std"}
    data = [d.text.strip() for d in ET.parse(path).getroot().iter("DataItem")]
    assert any(text.startswith("fields.h5:") for text in data)  # relative to the .xdmf
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.mpi
def test_written_values_are_the_transfer(comm, tmp_path_factory):
    """Reading the mesh and the dof values back: a linear field is reproduced exactly."""
    netcdf4 = pytest.importorskip("netCDF4")  # reads the HDF5 file; installed with xarray here

    from invprior.pde import write_grid_functions

    V, T = _space_and_transfer(comm)
    yy, xx = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 6), indexing="ij")
    path = _shared_folder(comm, tmp_path_factory) / "linear.xdmf"
    write_grid_functions(V, T, {"m": 1 + xx - 3 * yy}, path)
    comm.Barrier()
    with netcdf4.Dataset(path.with_suffix(".h5")) as h5:
        x = np.asarray(h5["Mesh"]["mesh"]["geometry"][:])
        (values,) = (np.asarray(v[:]) for v in h5["Function"]["m"].variables.values())
    np.testing.assert_allclose(values.ravel(), 1 + x[:, 0] - 3 * x[:, 1], atol=1e-12)


def test_bad_arguments_are_rejected(comm, tmp_path):
    from invprior.pde import write_grid_functions

    V, T = _space_and_transfer(comm)
    with pytest.raises(ValueError, match=r"end in \.xdmf"):
        write_grid_functions(V, T, {"m": np.zeros(GRID[0])}, tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"shape \(3, 3\) but the grid is \(5, 6\)"):
        write_grid_functions(V, T, {"m": np.zeros((3, 3))}, tmp_path / "m.xdmf")
    with pytest.raises(ValueError, match="fields is empty"):
        write_grid_functions(V, T, {}, tmp_path / "m.xdmf")
