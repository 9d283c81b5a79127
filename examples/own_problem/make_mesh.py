# SPDX-License-Identifier: MIT
"""Write ``domain.xdmf`` (+ ``domain.h5``): the channel with a step, and its facet tags.

The domain is the 2 m x 1 m channel :math:`[0, 2] \\times [0, 1]` without its lower-right
corner :math:`[1.5, 2] \\times [0, 0.375]` (a jetty), meshed with 48 x 24 squares cut
into triangles. Facet tags: 1 the inflow side ``x = 0``; 2 the outflow faces ``x = 2``
and the jetty's upstream face ``x = 1.5``; 3 the walls ``y = 0``, ``y = 1`` and the top
of the jetty. ``study.toml`` puts its boundary data on these tags. Run from anywhere:
``python examples/own_problem/make_mesh.py``.
"""

from pathlib import Path

from mpi4py import MPI

import dolfinx.io
import dolfinx.mesh
import numpy as np

from invprior.fileio import discard, move_into, partial_folder
from invprior.pde import tag_boundaries

HERE = Path(__file__).parent
JETTY = (1.5, 0.375)  # lower-left corner of the removed block; it reaches to (2, 0)

channel = dolfinx.mesh.create_rectangle(MPI.COMM_SELF, [[0.0, 0.0], [2.0, 1.0]], [48, 24])
cells = np.arange(channel.topology.index_map(2).size_local, dtype=np.int32)
mid = dolfinx.mesh.compute_midpoints(channel, 2, cells)
keep = cells[~((mid[:, 0] > JETTY[0]) & (mid[:, 1] < JETTY[1]))]
mesh = dolfinx.mesh.create_submesh(channel, 2, keep)[0]
tags = tag_boundaries(
    mesh,
    {
        1: lambda x: np.isclose(x[0], 0.0),
        2: lambda x: np.isclose(x[0], 2.0) | np.isclose(x[0], JETTY[0]),
        3: lambda x: np.isclose(x[1], 0.0) | np.isclose(x[1], 1.0) | np.isclose(x[1], JETTY[1]),
    },
)
mesh.name, tags.name = "mesh", "facet_tags"

# Both files are written into a hidden partial folder beside them, then renamed into place,
# the ``.h5`` first (the ``.xdmf`` refers to it by its bare name): an interrupted run leaves
# the previous pair.
target = HERE / "domain.xdmf"
partial = partial_folder(target)
try:
    with dolfinx.io.XDMFFile(mesh.comm, str(partial / target.name), "w") as xdmf:
        xdmf.write_mesh(mesh)
        xdmf.write_meshtags(tags, mesh.geometry)
    h5 = target.with_suffix(".h5")
    move_into(partial, {h5.name: h5, target.name: target})
finally:
    discard(partial)
