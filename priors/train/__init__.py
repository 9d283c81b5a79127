# SPDX-License-Identifier: MIT
"""Training loops for the generative priors."""

from .config import VAETrainConfig
from .evaluate import evaluate_vae
from .seeds import lds_over_seeds
from .vae import build_vae, fit_rec_shift, train_vae, vae_loss

__all__ = [
    "VAETrainConfig",
    "build_vae",
    "evaluate_vae",
    "fit_rec_shift",
    "lds_over_seeds",
    "train_vae",
    "vae_loss",
]
