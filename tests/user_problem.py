# SPDX-License-Identifier: MIT
"""A user's own problem for the study tests: a physics file, and data written from a truth."""

import csv
import tomllib

from tiny_study import study_toml

from invprior.study import StudyConfig, build_study

#: A user's physics file: steady advection-diffusion with the grid field as source.
PHYSICS = '''
import ufl


def residual(u, m, v):
    """-div(0.1 grad u) + w . grad u = m."""
    w = ufl.as_vector((2.0, 0.0))
    diffusion = 0.1 * ufl.inner(ufl.grad(u), ufl.grad(v))
    return (diffusion + ufl.dot(w, ufl.grad(u)) * v - m * v) * ufl.dx


def not_a_form(u, m, v):
    return 1.0
'''

#: Boundary data of the physics on the generator's box: u = 0 left, Robin right, the rest
#: natural.
BOUNDARY = "[pde.dirichlet]\n1 = 0.0\n[pde.robin]\n2 = [5.0, 0.0]\n"


def physics_toml(text):
    """``text`` (a tiny study) with the physics file's residual and its boundary data."""
    return text + '[pde]\nform = "physics.py:residual"\n' + BOUNDARY


def data_toml(prior, out=None, noise="std = 0.02"):
    """A tiny study of ``data.csv`` with the physics file's residual, beside the TOML."""
    text = study_toml(prior, out, baseline=False)
    lines, skip = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skip = line in ("[sensors]", "[noise]", "[truth]")
        if not skip:
            lines.append(line)
    text = "\n".join(lines) + f'\n[data]\nfile = "data.csv"\n[noise]\n{noise}\n'
    return physics_toml(text)


def write_user_problem(folder, prior, comm, std_column=False):
    """Write ``physics.py`` and ``data.csv`` (a synthetic truth's noisy data) into ``folder``.

    The data are those of the tiny truth study with the same physics (``[sensors]``
    per_side = 3, noise std 0.02).

    Returns:
        The truth study's :class:`invprior.study.StudySetup`.
    """
    (folder / "physics.py").write_text(PHYSICS)
    text = physics_toml(study_toml(prior, baseline=False)).replace("relative = 0.05", "std = 0.02")
    setup = build_study(StudyConfig.from_dict(tomllib.loads(text), base=folder), comm)
    points = setup.model.sensors.points[:, :2]
    with open(folder / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "value", *(["std"] if std_column else [])])
        for (x, y), value in zip(points, setup.data.numpy(), strict=True):
            writer.writerow([repr(float(x)), repr(float(y)), repr(float(value))]
                            + ([0.02] if std_column else []))  # fmt: skip
    return setup


#: Boundary data of the physics on the L-shaped mesh: u = 0 on the left side (tag 1),
#: Robin outflow on the right side x = 1 (tag 5), the rest natural.
L_BOUNDARY = "[pde.dirichlet]\n1 = 0.0\n[pde.robin]\n5 = [5.0, 0.0]\n"


def l_mesh(comm, n=4):
    """The unit square without its top-right quarter, tags 1 on x = 0 and 5 on x = 1.

    Returns:
        ``(mesh, facet_tags)``, both named for XDMF (``"mesh"``, ``"facet_tags"``).
    """
    import dolfinx.mesh
    import numpy as np

    from invprior.pde import tag_boundaries

    square = dolfinx.mesh.create_unit_square(comm, n, n)
    cells = np.arange(square.topology.index_map(2).size_local, dtype=np.int32)
    mid = dolfinx.mesh.compute_midpoints(square, 2, cells)
    keep = cells[~((mid[:, 0] > 0.5) & (mid[:, 1] > 0.5))]
    mesh = dolfinx.mesh.create_submesh(square, 2, keep)[0]
    tags = tag_boundaries(
        mesh, {1: lambda x: np.isclose(x[0], 0.0), 5: lambda x: np.isclose(x[0], 1.0)}
    )
    mesh.name, tags.name = "mesh", "facet_tags"
    return mesh, tags


def write_mesh(path, mesh, tags=None):
    """Write ``mesh`` and, if given, its facet ``tags`` to the XDMF file ``path``."""
    import dolfinx.io

    with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as xdmf:
        xdmf.write_mesh(mesh)
        if tags is not None:
            xdmf.write_meshtags(tags, mesh.geometry)
