# SPDX-License-Identifier: MIT
"""Spread of a held-out disentanglement score over training seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..simulate import FieldDataset
from .config import VAETrainConfig
from .evaluate import evaluate_vae
from .vae import train_vae

__all__ = ["lds_over_seeds"]


def lds_over_seeds(
    config: VAETrainConfig,
    data: FieldDataset,
    heldout: FieldDataset,
    seeds: Sequence[int],
    key: str = "lds_all",
    num_threads: int | None = None,
) -> dict:
    """Train one model per seed and summarise its held-out score.

    Whether a training recipe disentangles *consistently* shows in the spread over
    seeds, e.g. a semi-supervised VAE with ``labelled_fraction=0.01`` against ``0.0``.

    Args:
        config: The settings; its ``seed`` is replaced by each of ``seeds``.
        data: Training data.
        heldout: Held-out data with named factors, for :func:`evaluate_vae`.
        seeds: Training seeds.
        key: Score of :func:`evaluate_vae` to collect (``"lds_all"``: LDS against all
            latent coordinates; ``"lds"``: against the auxiliary block).
        num_threads: CPU threads for torch during each training run.

    Returns:
        ``{"seeds", "scores", "mean", "std"}`` (``std`` over seeds, ``ddof=0``).
    """
    if not seeds:
        raise ValueError("seeds is empty; pass at least one training seed")
    scores = []
    for seed in seeds:
        cfg = replace(config, seed=int(seed))
        model, _ = train_vae(cfg, data, progress=False, num_threads=num_threads)
        scores.append(float(evaluate_vae(model.cpu(), heldout)[key]))
    return {
        "seeds": [int(s) for s in seeds],
        "scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
    }
