# SPDX-License-Identifier: MIT
r"""Held-out scores recorded in a checkpoint's sidecar after training.

A thin wrapper over :mod:`invprior.priors.metrics` for held-out data with named
variables :math:`u` and encoder means :math:`\mu = (\mu_{aux}, \mu_{rec})`:

- ``lds_all``: LDS (Eq. (10) of [1]) against *all* latent coordinates, so named
  information leaking into :math:`\mu_{rec}` counts against it;
- ``lds``: LDS against the auxiliary block only (as ``invprior evaluate-prior`` reports;
  for a model without one, against all latents);
- ``lds_ceiling``, ``lds_all_ceiling``, ``lds_of_factors``: what a perfect code scores
  (:func:`invprior.priors.metrics.lds_scores`), to read each LDS against;
- ``aux_corr``: :math:`|\rho(u_j, \mu_{aux, j})|` for each named variable;
- ``ssim_median``: median SSIM of the reconstructions :math:`G(\mu)`;
- ``fidelity`` (:func:`evaluate_dlcfm` only): the scores of
  :func:`invprior.priors.fidelity.fidelity_scores` for prior draws of the DL-CFM generator
  and of its Aux-VAE, against the same held-out fields.

Sampling noise biases LDS down by about :math:`(m - 1)\sqrt{2 / (\pi n)}` (``m`` latent
coordinates, ``n`` samples; see :func:`invprior.priors.metrics.lds`), which the ceilings
state, hence the large held-out sets used for the shipped generators.

References:
    [1] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...training_data import run_simulator
from ..base import Generator, GridSpec
from ..batched import decode_latents, encode_means
from ..dlcfm import DLCFMGenerator
from ..fidelity import fidelity_scores, prior_draws
from ..metrics import explicitness, lds_scores, ssim_scores
from ..simulate import FieldDataset, simulate

__all__ = ["HELDOUT_SEED_OFFSET", "evaluate_dlcfm", "evaluate_vae", "heldout_data"]

#: Held-out data are simulated with the training seed plus this offset.
HELDOUT_SEED_OFFSET = 1_000_003


def heldout_data(recipe: Mapping, n: int, grid: GridSpec) -> FieldDataset:
    """Fresh fields from the simulator that made the training data, for held-out scores.

    The simulator the ``recipe`` of the training data names (a built-in ``simulator`` of
    :func:`~invprior.priors.simulate.simulate`, or a simulator ``plugin`` file run with
    :func:`invprior.training_data.run_simulator`) draws ``n`` fields with the training
    seed plus :data:`HELDOUT_SEED_OFFSET`, so they are not the training fields.

    Args:
        recipe: The training data's recipe (:attr:`~invprior.priors.FieldDataset.recipe`),
            with ``seed`` and ``simulator`` or ``plugin``.
        n: Number of fields.
        grid: Grid of a built-in simulator's fields (a plugin has its own ``GRID``).

    Returns:
        The held-out data; its ``recipe["seed"]`` is the held-out seed.

    Raises:
        InputError: From the plugin (file missing or failing; see
            :func:`~invprior.training_data.run_simulator`).

    Example:
        >>> held = heldout_data({"simulator": "source", "seed": 3}, 4, GridSpec((8, 8)))
        >>> held.fields.shape, held.recipe["seed"] == 3 + HELDOUT_SEED_OFFSET
        ((4, 8, 8), True)
    """
    seed = int(recipe["seed"]) + HELDOUT_SEED_OFFSET
    if recipe.get("plugin"):
        return run_simulator(recipe["plugin"], n, seed)
    return simulate(recipe["simulator"], n, seed, grid)


def evaluate_vae(model: Generator, data: FieldDataset, n_ssim: int = 2000) -> dict:
    """LDS, per-variable alignment and reconstruction SSIM of a VAE on held-out data.

    Args:
        model: An :class:`~invprior.priors.AuxVAE` or :class:`~invprior.priors.BetaVAE`.
        data: Held-out data carrying the named variables (``data.aux``).
        n_ssim: Number of samples (the first ones) whose reconstructions are scored.

    Returns:
        ``n``, the LDS scores of :func:`~invprior.priors.metrics.lds_scores` (each LDS
        beside its ceiling), ``ssim_median`` and ``n_ssim``, plus, for a model with named
        variables, ``aux_corr`` (``{name: |corr(u_j, mu_aux_j)|}``) and ``aux_corr_min``.
    """
    mu = encode_means(model, data.fields, batch_size=1024)
    u = data.aux
    d = model.aux_dim
    scores: dict = {"n": len(data), **lds_scores(u, mu, d)}
    if d:
        corr = explicitness(u, mu[:, :d])
        scores["aux_corr"] = {k: float(v) for k, v in zip(model.aux_names, corr, strict=True)}
        scores["aux_corr_min"] = float(corr.min())
    n = min(n_ssim, len(data))
    recon = decode_latents(model, mu[:n], batch_size=1024)
    scores["ssim_median"] = float(np.median(ssim_scores(data.fields[:n], recon)))
    scores["n_ssim"] = n
    return scores


def evaluate_dlcfm(
    model: DLCFMGenerator, data: FieldDataset, n_ssim: int = 2000, n_draws: int = 2000
) -> dict:
    r""":func:`evaluate_vae` of a DL-CFM generator plus the fidelity of its prior draws.

    The latent scores are those of the Aux-VAE encoder it shares; ``ssim_median`` scores
    the conditional mean path :math:`G(\mu, \varepsilon = 0)`.

    Args:
        model: The trained generator.
        data: Held-out data carrying the named variables.
        n_ssim: Fields whose reconstructions are scored.
        n_draws: Prior draws of each generator and held-out fields (the first ones) in the
            fidelity scores.

    Returns:
        The :func:`evaluate_vae` dict plus ``"fidelity": {"dlcfm": ..., "auxvae": ...}``.
    """
    scores = evaluate_vae(model, data, n_ssim)
    held = data.fields[:n_draws]
    scores["fidelity"] = {
        name: fidelity_scores(prior_draws(g, len(held), seed=0), held)
        for name, g in (("dlcfm", model), ("auxvae", model.base))
    }
    return scores
