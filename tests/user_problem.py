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
