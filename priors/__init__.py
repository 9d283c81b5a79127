# SPDX-License-Identifier: MIT
"""Generative priors (torch), installed as :mod:`invprior.priors`."""

from .anomaly import rank_anomalies, residual_tail_probability
from .base import Encoder, Generator, GridSpec, resolve_device
from .checkpoint import load, pretrained_names, save
from .dirty_regression import dirty_block_sparse_regression
from .dlcfm import DLCFMGenerator, VelocityUNet
from .flow import flow_matching_loss, integrate, integrate_adaptive
from .gaussian import GaussianFieldPrior
from .hierarchical import HierarchicalVAE
from .latent_diagnostics import align_latents, separation_index, traversal_heterogeneity
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
from .semisupervised import SemiSupervisedVAE
from .shape_matching import knn_kl_divergence, shape_matching_score
from .simulate import FieldDataset, simulate, simulate_conductivity, simulate_sources
from .simulator_prior import SimulatorPrior
from .vae import AuxVAE, BetaVAE

__all__ = [
    "AuxVAE",
    "BetaVAE",
    "DLCFMGenerator",
    "Encoder",
    "FieldDataset",
    "GaussianFieldPrior",
    "Generator",
    "GridSpec",
    "HierarchicalVAE",
    "SemiSupervisedVAE",
    "SimulatorPrior",
    "VelocityUNet",
    "abs_correlation",
    "align_latents",
    "dci",
    "decode_latents",
    "dirty_block_sparse_regression",
    "encode_means",
    "evaluate_generator",
    "explicitness",
    "flow_matching_loss",
    "integrate",
    "integrate_adaptive",
    "knn_kl_divergence",
    "lds",
    "load",
    "mig",
    "perturbation_importance",
    "pretrained_names",
    "rank_anomalies",
    "residual_tail_probability",
    "resolve_device",
    "sap",
    "save",
    "separation_index",
    "shape_matching_score",
    "simulate",
    "simulate_conductivity",
    "simulate_sources",
    "ssim_scores",
    "traversal_heterogeneity",
]
