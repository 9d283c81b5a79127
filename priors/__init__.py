# SPDX-License-Identifier: MIT
r"""Generative priors (torch), installed as :mod:`invprior.priors`.

Words:

- A *generator* (:class:`Generator`) is a frozen network or formula that maps a split
  latent to a field, ``x = decode(z_aux, z_rec[, eps])``; it has no probability of its
  own. Every class exported here that builds fields is one, whatever its family
  (:class:`AuxVAE`, :class:`DLCFMGenerator`, :class:`GaussianFieldGenerator`,
  :class:`SimulatorGenerator`, ...).
- The *named latent* ``z_aux`` has one coordinate per named physical variable
  (``aux_names``: source position, amplitude, ...), tied to it by the affine map
  :meth:`Generator.to_latent`; the *residual latent* ``z_rec`` carries what the names do
  not. A flow generator adds base noise ``eps`` (``eps_shape``).
- A *prior* is a probability distribution. In this package: the Gaussian a VAE's latent
  is trained against, :math:`p(z \mid u)` (``conditional_prior_moments``), and the
  hierarchical VAE's learned :math:`p_\phi(z)`. The prior an inverse problem samples
  (``InverseProblem.prior``) is a :class:`invprior.model.DisentangledPrior`: a generator
  plus distributions on its named variables and latents, written as a Pyro program with
  one site per name.
- A *pretrained* or *shipped* prior (``source-auxvae``, ``source-dlcfm``, ...) is a saved
  generator, loaded by name with :func:`load`; the package name ``priors`` follows this
  use of the word.
"""

from .anomaly import rank_anomalies, residual_tail_probability
from .base import Encoder, Generator, GridSpec, resolve_device
from .batched import decode_latents, encode_means
from .checkpoint import load, pretrained_names, save
from .dirty_regression import dirty_block_sparse_regression
from .dlcfm import DLCFMGenerator, VelocityUNet
from .flow import flow_matching_loss, integrate, integrate_adaptive
from .gaussian import GaussianFieldGenerator
from .hierarchical import HierarchicalVAE
from .latent_diagnostics import align_latents, separation_index, traversal_heterogeneity
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
from .semisupervised import SemiSupervisedVAE
from .shape_matching import knn_kl_divergence, shape_matching_score
from .simulate import FieldDataset, simulate, simulate_conductivity, simulate_sources
from .simulator_generator import SimulatorGenerator
from .vae import AuxVAE, BetaVAE

__all__ = [
    "AuxVAE",
    "BetaVAE",
    "DLCFMGenerator",
    "Encoder",
    "FieldDataset",
    "GaussianFieldGenerator",
    "Generator",
    "GridSpec",
    "HierarchicalVAE",
    "SemiSupervisedVAE",
    "SimulatorGenerator",
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
