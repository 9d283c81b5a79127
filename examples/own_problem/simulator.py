# SPDX-License-Identifier: MIT
r"""The training fields of the own-problem example: contaminant releases in a channel.

``invprior simulate --simulator examples/own_problem/simulator.py:simulate`` calls
:func:`simulate`; ``GRID`` and ``FACTORS`` tell it the grid and the named factors (see
:mod:`invprior.training_data` for the contract). A release is an elliptical Gaussian
patch of rate

.. math::

    m(\mathbf{x}) = A \exp\big(-\tfrac12 \mathbf{d}^T \Sigma^{-1} \mathbf{d}\big)
        + b A \exp\big(-\tfrac{|\mathbf{x} - \mathbf{x}_2|^2}{2 (2w)^2}\big),
    \quad \mathbf{d} = \mathbf{x} - (x_0, y_0),
    \quad \Sigma = R_\theta \operatorname{diag}(w^2 \rho, w^2 / \rho) R_\theta^T,

named ``x0, y0, rate`` (:math:`A`) and ``width`` (:math:`w`); the anisotropy
:math:`\rho`, orientation :math:`\theta` and a faint second patch (:math:`b`,
:math:`\mathbf{x}_2`) are unnamed variability the prior's residual block absorbs.
"""

import numpy as np

#: 32 x 64 nodes over the 2 m x 1 m channel (the mesh's bounding box).
GRID = {"shape": (32, 64), "bbox": ((0.0, 0.0), (2.0, 1.0))}

#: The named factors: the prior's physical sites, uniform over these ranges.
FACTORS = {
    "x0": {"units": "m", "range": (0.2, 1.2)},
    "y0": {"units": "m", "range": (0.25, 0.75)},
    "rate": {"units": "g/(m2 s)", "range": (0.5, 2.0)},
    "width": {"units": "m", "range": (0.05, 0.12)},
}


def simulate(num, rng):
    """Draw ``num`` releases.

    Args:
        num: Number of fields.
        rng: The ``numpy.random.Generator`` of every draw.

    Returns:
        ``(fields, factors)``: fields of shape ``(num, 32, 64)`` and each factor's values,
        shape ``(num,)``.
    """
    named = {k: rng.uniform(*v["range"], size=num) for k, v in FACTORS.items()}
    unnamed = {
        "log_anisotropy": rng.uniform(-0.4, 0.4, size=num),
        "orientation": rng.uniform(0.0, np.pi, size=num),
        "x2": rng.uniform(0.1, 1.4, size=num),
        "y2": rng.uniform(0.1, 0.9, size=num),
        "background": rng.uniform(0.0, 0.15, size=num),
    }
    (x_lo, y_lo), (x_hi, y_hi) = GRID["bbox"]
    ny, nx = GRID["shape"]
    x, y = np.meshgrid(np.linspace(x_lo, x_hi, nx), np.linspace(y_lo, y_hi, ny))
    x, y = x[None], y[None]
    dx, dy = x - named["x0"][:, None, None], y - named["y0"][:, None, None]
    cos, sin = np.cos(unnamed["orientation"]), np.sin(unnamed["orientation"])
    along = cos[:, None, None] * dx + sin[:, None, None] * dy
    across = -sin[:, None, None] * dx + cos[:, None, None] * dy
    rho = np.exp(unnamed["log_anisotropy"])[:, None, None]
    w2 = named["width"][:, None, None] ** 2
    patch = np.exp(-0.5 * (along**2 / (w2 * rho) + across**2 * rho / w2))
    r2 = (x - unnamed["x2"][:, None, None]) ** 2 + (y - unnamed["y2"][:, None, None]) ** 2
    second = unnamed["background"][:, None, None] * np.exp(-r2 / (8 * w2))
    fields = named["rate"][:, None, None] * (patch + second)
    return fields, named | unnamed
