# SPDX-License-Identifier: MIT
"""Generative priors (torch), installed as :mod:`invprior.priors`."""

from .base import Generator, GridSpec
from .metrics import (
    abs_correlation,
    dci,
    evaluate_generator,
    explicitness,
    lds,
    mig,
    perturbation_importance,
    sap,
    ssim_scores,
)

__all__ = [
    "Generator",
    "GridSpec",
    "abs_correlation",
    "dci",
    "evaluate_generator",
    "explicitness",
    "lds",
    "mig",
    "perturbation_importance",
    "sap",
    "ssim_scores",
]
