# SPDX-License-Identifier: MIT
"""The worked example ``examples/own_problem``: its files fit together (the run is not done here).

Cheap checks only: the TOML validates, the shipped checkpoint loads and was trained on the
example's own simulator (grid, names, units, ranges), the data file reads, and the mesh
file is the channel with its corner cut out, with the facet tags the TOML uses. (The
study's pre-flight check of the example runs in ``tests/study/test_setup.py``.)
"""

from pathlib import Path

import numpy as np
import pytest

from invprior.data import read_observations
from invprior.plugin import load_function
from invprior.priors import load
from invprior.priors.base import GridSpec
from invprior.study import StudyConfig

HERE = Path(__file__).resolve().parents[2] / "examples" / "own_problem"


@pytest.fixture(scope="module")
def config():
    return StudyConfig.from_toml(HERE / "study.toml")


def test_toml_validates_with_paths_beside_it(config):
    assert Path(config.mesh.file) == HERE / "domain.xdmf"
    assert Path(config.data.file) == HERE / "data.csv"
    assert config.pde.form == f"{HERE / 'physics.py'}:residual"
    assert Path(config.prior.name) == HERE / "prior"
    assert config.noise.prior == "halfnormal" and config.truth is None
    assert config.pde.dirichlet == {1: 0.0} and config.pde.robin == {2: (5.0, 0.0)}


def test_shipped_checkpoint_is_the_simulators_prior(config):
    _, simulator = load_function(f"{HERE / 'simulator.py'}:simulate", "simulator.py")
    g = load(config.prior.name)
    grid = simulator["GRID"]
    assert g.grid == GridSpec(grid["shape"], grid["bbox"])
    assert g.aux_names == tuple(simulator["FACTORS"])
    assert g.aux_units == tuple(v["units"] for v in simulator["FACTORS"].values())
    assert g.aux_ranges == {k: v["range"] for k, v in simulator["FACTORS"].items()}
    recipe = g.training_data
    assert recipe["plugin"].endswith("examples/own_problem/simulator.py:simulate")
    assert g.metadata["metrics"]["aux_corr_min"] > 0.9  # named factors are disentangled
    assert (HERE / "prior.safetensors").stat().st_size < 3_000_000


def test_data_file_reads(config):
    observations = read_observations(config.data.file)
    assert observations.n_obs == 15 and observations.std is None
    assert np.isfinite(observations.values).all() and observations.values.max() > 0


@pytest.mark.dolfinx
def test_mesh_is_the_channel_without_its_corner(config):
    from mpi4py import MPI

    import dolfinx.mesh

    from invprior.pde import mesh_bbox, read_mesh

    loaded = read_mesh(MPI.COMM_SELF, config.mesh.file, facet_tags_name="facet_tags")
    assert mesh_bbox(loaded.mesh) == ((0.0, 0.0), (2.0, 1.0))
    assert sorted(np.unique(loaded.facet_tags.values)) == [1, 2, 3]
    cells = np.arange(loaded.mesh.topology.index_map(2).size_local, dtype=np.int32)
    mid = dolfinx.mesh.compute_midpoints(loaded.mesh, 2, cells)
    assert not ((mid[:, 0] > 1.5) & (mid[:, 1] < 0.375)).any()  # the jetty is cut out
    assert len(cells) == 2 * (48 * 24 - 12 * 9)
