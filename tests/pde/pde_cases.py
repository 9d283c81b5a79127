# SPDX-License-Identifier: MIT
"""Tiny problems and smooth fields shared by the forward-model tests."""

import numpy as np

UNIT = ((0.0, 0.0), (1.0, 1.0))


def smooth_field(shape, scale=1.0):
    """A deterministic smooth field on the unit-square grid, shape ``shape``."""
    ys, xs = np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1])
    gx, gy = np.meshgrid(xs, ys)
    return scale * (np.sin(2 * gx + 1) * np.cos(3 * gy) + 0.5 * gx * gy)


def build(kind, comm, n=8, grid=(9, 9), k=3, **kwargs):
    """A tiny source or conductivity problem on the unit square with k x k sensors."""
    from invprior.pde import ConductivityProblem, SourceProblem, grid_sensors, unit_square

    cls = {"source": SourceProblem, "conductivity": ConductivityProblem}[kind]
    return cls(unit_square(comm, n), grid_sensors(UNIT, k), grid, **kwargs)
