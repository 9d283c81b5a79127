# SPDX-License-Identifier: MIT
"""Generative priors (torch), installed as :mod:`invprior.priors`."""

from .base import Generator, GridSpec

__all__ = ["Generator", "GridSpec"]
