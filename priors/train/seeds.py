# SPDX-License-Identifier: MIT
"""Spread of a held-out disentanglement score over training seeds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..base import Generator
from ..simulate import FieldDataset
from .config import VAETrainConfig
from .evaluate import evaluate_vae
from .vae import train_vae

__all__ = ["lds_over_seeds", "train_and_evaluate"]

Evaluate = Callable[[Generator, FieldDataset, int], dict]
"""``evaluate(model, heldout, seed) -> scores`` of a trained model (on the CPU)."""


def _evaluate_vae(model: Generator, heldout: FieldDataset, seed: int) -> dict:
    """:func:`evaluate_vae` (which draws nothing, so the seed is not used)."""
    return evaluate_vae(model, heldout)


def train_and_evaluate(
    config: VAETrainConfig,
    data: FieldDataset,
    heldout: FieldDataset,
    seed: int,
    evaluate: Evaluate = _evaluate_vae,
    num_threads: int | None = None,
) -> dict:
    """Train one model with ``seed`` and score it on held-out data: one run of a seed study.

    Args:
        config: The settings; its ``seed`` is replaced by ``seed``.
        data: Training data.
        heldout: Held-out data with named factors.
        seed: Training seed (also passed to ``evaluate``).
        evaluate: ``evaluate(model, heldout, seed) -> scores`` (default: :func:`evaluate_vae`;
            e.g. :func:`invprior.priors.metrics.evaluate_generator` for SAP, MIG and DCI).
        num_threads: CPU threads for torch during training.

    Returns:
        The scores of ``evaluate``.
    """
    model, _ = train_vae(
        replace(config, seed=int(seed)), data, progress=False, num_threads=num_threads
    )
    return evaluate(model.cpu(), heldout, int(seed))


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
    scores = [
        float(train_and_evaluate(config, data, heldout, seed, num_threads=num_threads)[key])
        for seed in seeds
    ]
    return {
        "seeds": [int(s) for s in seeds],
        "scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
    }
