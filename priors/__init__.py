# SPDX-License-Identifier: MIT
"""Generative priors (torch), installed as :mod:`invprior.priors`."""

from .base import Generator, GridSpec, resolve_device
from .checkpoint import load, pretrained_names, save
from .gaussian import GaussianFieldPrior
from .metrics import (
    abs_correlation,
    dci,
    decode_latents,
    encode_means,
    evaluate_generator,
    explicitness,
    lds,
    mig,
    perturbation_importance,
    sap,
    ssim_scores,
)
from .simulate import FieldDataset, simulate, simulate_conductivity, simulate_sources
from .vae import AuxVAE, BetaVAE

__all__ = [
    "AuxVAE",
    "BetaVAE",
    "FieldDataset",
    "GaussianFieldPrior",
    "Generator",
    "GridSpec",
    "abs_correlation",
    "dci",
    "decode_latents",
    "encode_means",
    "evaluate_generator",
    "explicitness",
    "lds",
    "load",
    "mig",
    "perturbation_importance",
    "pretrained_names",
    "resolve_device",
    "sap",
    "save",
    "simulate",
    "simulate_conductivity",
    "simulate_sources",
    "ssim_scores",
]
