# SPDX-License-Identifier: MIT
import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.dolfinx


def test_rectangle_bbox_and_cells(comm):
    from invprior.pde import mesh_bbox, rectangle

    mesh = rectangle(comm, ((-1.0, 0.0), (2.0, 0.5)), (6, 2), cell="quadrilateral")
    assert mesh_bbox(mesh) == ((-1.0, 0.0), (2.0, 0.5))
    assert comm.allreduce(mesh.topology.index_map(2).size_local) == 12


@pytest.mark.parametrize(
    ("args", "match"),
    [((((0, 0), (1, 1)), (0, 3)), "positive"), ((((1, 0), (0, 1)), (2, 2)), "xmax > xmin")],
)
def test_rectangle_rejects_bad_input(comm, args, match):
    from invprior.pde import rectangle

    with pytest.raises(ValueError, match=match):
        rectangle(comm, *args)


def test_unit_square_rejects_unknown_cell(comm):
    from invprior.pde import unit_square

    with pytest.raises(ValueError, match="cell must be one of"):
        unit_square(comm, 2, cell="hexagon")


def test_tag_boundaries_later_tag_wins(comm):
    from invprior.pde import tag_boundaries, unit_square

    mesh = unit_square(comm, 4)
    tags = tag_boundaries(mesh, {1: lambda x: np.isclose(x[0], 0.0), 2: lambda x: x[0] < 0.6})
    n_owned = mesh.topology.index_map(1).size_local
    owned = tags.indices < n_owned
    count = {v: comm.allreduce(int(np.sum((tags.values == v) & owned))) for v in (1, 2)}
    # The left edge (4 facets) matches both and keeps tag 2, as do 2 bottom and 2 top facets.
    assert count == {1: 0, 2: 8}


@pytest.mark.skip_in_parallel
def test_read_xdmf_round_trip(comm, tmp_path):
    import dolfinx.io

    from invprior.pde import read_mesh, tag_boundaries, unit_square

    mesh = unit_square(comm, 3)
    tags = tag_boundaries(mesh, {7: lambda x: np.isclose(x[1], 1.0)})
    tags.name = "facets"
    path = tmp_path / "square.xdmf"
    with dolfinx.io.XDMFFile(comm, str(path), "w") as xdmf:
        xdmf.write_mesh(mesh)
        xdmf.write_meshtags(tags, mesh.geometry)
    loaded = read_mesh(comm, path, facet_tags_name="facets")
    assert loaded.mesh.topology.index_map(2).size_global == 18
    assert loaded.cell_tags is None and loaded.facet_tags.find(7).size == 3


def test_read_mesh_errors(comm, tmp_path):
    from invprior.pde import read_mesh

    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_mesh(comm, tmp_path / "missing.xdmf")
    other = tmp_path / "mesh.vtk"
    other.write_text("")
    with pytest.raises(ValueError, match=r"\.xdmf or \.msh"):
        read_mesh(comm, other)


@pytest.mark.skipif(importlib.util.find_spec("gmsh") is not None, reason="gmsh is installed")
def test_read_msh_without_gmsh_names_the_fix(comm, tmp_path):
    from invprior.pde import read_mesh

    path = tmp_path / "mesh.msh"
    path.write_text("")
    with pytest.raises(ImportError, match="pip install gmsh"):
        read_mesh(comm, path)
