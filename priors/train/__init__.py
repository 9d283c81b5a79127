# SPDX-License-Identifier: MIT
"""Training loops for the generative priors."""

from .config import TrainingDivergedError, VAETrainConfig, check_loss, nonfinite_weights
from .dlcfm import DLCFMTrainConfig, train_dlcfm
from .evaluate import evaluate_vae
from .seeds import lds_over_seeds
from .vae import (
    build_vae,
    consistency_weight,
    fit_rec_shift,
    named_consistency,
    starting_model,
    train_vae,
    vae_loss,
)

__all__ = [
    "DLCFMTrainConfig",
    "TrainingDivergedError",
    "VAETrainConfig",
    "build_vae",
    "check_loss",
    "consistency_weight",
    "evaluate_vae",
    "fit_rec_shift",
    "lds_over_seeds",
    "named_consistency",
    "nonfinite_weights",
    "starting_model",
    "train_dlcfm",
    "train_vae",
    "vae_loss",
]
