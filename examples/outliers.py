# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Finding unusual fields with the residual latent
#
# The named block of a disentangled prior explains position, strength and size; what is
# left goes into $z_{rec} \sim N(0, I)$. A field whose encoded residual lies far out in
# that distribution has structure the prior rarely makes: rank fields by the tail
# probability $P(\chi^2_r \ge \lVert \mu_{rec}(x) \rVert^2)$
# (:mod:`invprior.priors.anomaly`), the residual-latent analogue of spotting unusual
# haloes in a cosmological simulation.
#
# Here held-out fields of the training distribution are mixed with a few misspecified
# ones (two equally strong sources; sources sharper than any in training) and ranked; the
# scores say how many of the planted fields come out on top. The DL-CFM prior shares the
# Aux-VAE's encoder, so both give the same ranking.
#
# Run with `python examples/outliers.py --out results/outliers`.

# +
import argparse
import json
from pathlib import Path

import numpy as np

from invprior import priors
from invprior.fileio import save_figure, write_json
from invprior.priors.anomaly import (
    detection_auc,
    plot_anomalies,
    rank_anomalies,
    reconstruction_error,
    residual_tail_probability,
)
from invprior.priors.batched import decode_latents, encode_means
from invprior.priors.simulate import simulate, simulate_misspecified_sources

# -


def run(prior="source-auxvae", n_typical=2000, n_planted=20, seed=55, out=None):
    r"""Rank ``n_typical`` held-out and ``2 n_planted`` misspecified fields; score the ranking.

    Two scores rank the fields: the squared norm of the residual code
    (``residual_latent``, the order of the tail probability) and the relative
    reconstruction error :math:`\lVert x - G(\mu(x))\rVert / \lVert x\rVert`
    (``reconstruction``, :func:`invprior.priors.anomaly.reconstruction_error`); each is
    scored by :func:`invprior.priors.anomaly.detection_auc`.

    Returns:
        For each score, ``precision_at_k`` (the share of planted fields among the
        ``k = 2 n_planted`` highest scores) and ``auc_<kind>`` (the probability that a
        planted field of that kind scores above a typical one).
    """
    generator = priors.load(prior)
    grid = generator.grid
    parts = {
        "typical": simulate("source", n_typical, seed, grid).fields,
        "two_sources": simulate_misspecified_sources(n_planted, seed + 1, grid).fields,
        "sharp": simulate_misspecified_sources(n_planted, seed + 2, grid, "sharp").fields,
    }
    fields = np.concatenate(list(parts.values()))
    kind = np.concatenate([np.full(len(v), k) for k, v in parts.items()])
    mu = encode_means(generator, fields, batch_size=500)
    z_rec = mu[:, generator.aux_dim :]
    recon = decode_latents(generator, mu, batch_size=500)
    scores = {
        "residual_latent": (z_rec**2).sum(1),
        "reconstruction": reconstruction_error(fields, recon),
    }
    k = 2 * n_planted
    top = rank_anomalies(z_rec, top=k)["index"]
    result = {"prior": prior, "n_typical": n_typical, "n_planted": n_planted, "k": k}
    for name, score in scores.items():
        order = np.argsort(-score, kind="stable")[:k]
        result[name] = {
            "precision_at_k": float((kind[order] != "typical").mean()),
            **{
                f"auc_{p}": detection_auc(score[kind == p], score[kind == "typical"])
                for p in ("two_sources", "sharp")
            },
        }
    if out is not None:
        out = Path(out)
        fig = plot_anomalies(fields, residual_tail_probability(z_rec), top=8)
        for ax, i in zip(fig.axes, top[:8], strict=False):
            ax.set_xlabel(kind[i], fontsize=7)
        save_figure(fig, out / "outliers.png")
        write_json(out / "outliers.json", result)
    return result


def main():
    parser = argparse.ArgumentParser(description="Rank fields by their residual latent")
    parser.add_argument("--prior", default="source-auxvae", help="shipped name or checkpoint")
    parser.add_argument("--typical", type=int, default=2000, help="held-out typical fields")
    parser.add_argument("--planted", type=int, default=20, help="fields of each planted kind")
    parser.add_argument("--out", default="results/outliers", help="output folder")
    args = parser.parse_args()
    print(json.dumps(run(args.prior, args.typical, args.planted, out=args.out)))


if __name__ == "__main__":
    main()
