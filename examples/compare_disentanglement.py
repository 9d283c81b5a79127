# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Disentanglement of four VAE priors on the source fields, over training seeds
#
# The same training fields, the same encoder and decoder, four objectives:
#
# - **aux-vae**: the Aux-VAE of the shipped prior (named block tied to $u$ by
#   $z_{aux} \mid u \sim N(a(u), \tau^2 I)$, alignment and decorrelation penalties);
# - **beta-vae**: one $N(0, I)$ latent of the same total size, no labels;
# - **hvae**: the hierarchical-prior VAE (learned $p(z) = \int p(z \mid \xi) p(\xi) d\xi$,
#   reconstruction first, then a linear ramp to $\beta = 1$);
# - **ssvae**: the semi-supervised VAE, $-\log q(z_{aux} = u \mid y)$ on 1% of the fields.
#
# Each is trained over several seeds and scored on one held-out set with LDS (against all
# latents), SAP, MIG, DCI disentanglement and the median reconstruction SSIM
# (:func:`invprior.priors.metrics.evaluate_generator`). A second table trains the
# semi-supervised VAE with 0% and 1% labels over more seeds: whether 1% of labels makes
# disentanglement *consistent* shows in the spread over seeds.
#
# The budget is smaller than the shipped priors' (a subset of the training fields, fewer
# epochs; docs/results.md gives the training time of each run). Every finished run is kept
# in `OUT/runs/`, so an interrupted study resumes where it stopped:
#
# `python examples/compare_disentanglement.py --write docs/results.md`
#
# replaces the block between the `disentanglement-table` markers of that file.

# +
import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from invprior.cache import ResultCache
from invprior.fileio import write_json, write_text
from invprior.priors.metrics import evaluate_generator
from invprior.priors.simulate import FieldDataset
from invprior.priors.train import VAETrainConfig
from invprior.priors.train.evaluate import heldout_data
from invprior.priors.train.seeds import train_and_evaluate

SHARED = {"positive": True, "batch_size": 128, "learning_rate": 2e-3, "patience": 100}
MODELS = {
    "aux-vae": VAETrainConfig(
        model="auxvae", rec_dim=10, beta=0.2, lambda_intra=300, lambda_inter=300,
        kl_warmup_epochs=3, **SHARED,
    ),
    "beta-vae": VAETrainConfig(
        model="betavae", rec_dim=14, beta=0.2, kl_warmup_epochs=3, **SHARED,
    ),
    "hvae": VAETrainConfig(
        model="hvae", rec_dim=14, beta=1.0, recon_epochs=2, kl_warmup_epochs=3,
        kl_schedule="linear", **(SHARED | {"learning_rate": 1e-3}),
    ),
    "ssvae": VAETrainConfig(
        model="ssvae", rec_dim=10, beta=0.2, gamma=1.0, labelled_fraction=0.01,
        kl_warmup_epochs=3, **SHARED,
    ),
}  # fmt: skip
SCORES = ("lds_all", "sap", "mig", "dci_disentanglement", "ssim_median")
START, END = "<!-- disentanglement-table:start -->", "<!-- disentanglement-table:end -->"
# -


# ## One run: train with a seed, score on the held-out set
#
# :func:`invprior.priors.train.seeds.train_and_evaluate` trains one model with one seed;
# the scores are those of :func:`invprior.priors.metrics.evaluate_generator` on the
# held-out fields of :func:`invprior.priors.train.evaluate.heldout_data`, as for the
# shipped priors.


def disentanglement_scores(model, held, seed):
    """The scores of the tables, from :func:`evaluate_generator`."""
    out = evaluate_generator(model, held.fields, held.aux, held.aux_names, seed=seed)
    return {k: float(out[k]) for k in SCORES}


def score(config, train, held, seed, threads):
    """Train ``config`` with ``seed`` and return its held-out scores and wall time."""
    start = time.perf_counter()
    scores = train_and_evaluate(config, train, held, seed, disentanglement_scores, threads)
    return {**scores, "train_s": time.perf_counter() - start}


# ## Tables


def summary(runs):
    """Mean, standard deviation (ddof 0) and minimum of each score over seeds."""
    return {
        k: {f: float(getattr(np, f)([r[k] for r in runs])) for f in ("mean", "std", "min")}
        for k in (*SCORES, "train_s")
    }


def markdown(result):
    """The two tables and the command, as the block written into docs/results.md."""
    s = result["settings"]
    lines = [
        START,
        f"Training: the first {s['n_train']} fields of `{s['train']}`, {s['epochs']} epochs, "
        f"seeds {s['seeds']}; held-out: {s['n_heldout']} fresh fields (seed "
        f"{s['heldout_seed']}). Mean ± sd over seeds.",
        "",
        "| prior | LDS (all latents) | SAP | MIG | DCI-D | SSIM (median) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in result["models"].items():
        m = summary(runs)
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in SCORES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['train_s']['mean']:.0f} |")
    lines += [
        "",
        f"Semi-supervised VAE (label weight gamma = {s['gamma']:g}), LDS over seeds "
        f"{s['ssvae_seeds']}:",
        "",
        "| labelled | LDS mean | LDS sd | LDS min | scores |",
        "|---|---|---|---|---|",
    ]
    for frac, runs in result["labelled"].items():
        lds = [r["lds_all"] for r in runs]
        values = ", ".join(f"{v:.3f}" for v in lds)
        row = f"{np.mean(lds):.3f} | {np.std(lds):.3f} | {np.min(lds):.3f} | {values}"
        lines.append(f"| {float(frac):.0%} | {row} |")
    lines += ["", f"`{result['command']}`", END]
    return "\n".join(lines) + "\n"


def write_block(path, block):
    """Replace the marked block of ``path`` (or append it) atomically."""
    text = Path(path).read_text() if Path(path).exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text += "\n## Disentanglement over training seeds\n\n" + block
    write_text(path, text)


# ## The study
#
# Every finished run is kept in `OUT/runs/` (:class:`invprior.cache.ResultCache`, keyed
# on the run's settings and the package's code), so a rerun resumes where it stopped and
# a run the two tables share (the 1% semi-supervised VAE) is trained once.


def run(
    train="data/source-train.npz",
    n_train=5000,
    n_heldout=10000,
    epochs=8,
    batch_size=128,
    seeds=(0, 1, 2),
    ssvae_seeds=(0, 1, 2, 3, 4),
    fractions=(0.0, 0.01),
    gamma=1.0,
    threads=1,
    write=None,
    out=None,
):
    """Train every model over the seeds, then the 0% / 1% labelled study; write the tables.

    Returns:
        ``{"settings", "models": {name: [scores per seed]}, "labelled": {fraction: [scores
        per seed]}, "command"}``. With ``out``, every finished run is kept in
        ``out/runs``, the result is written to ``out/disentanglement.json`` and the tables
        to ``out/disentanglement.md``; with ``write``, the tables go into the marked block
        of that file.
    """
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in locals().items()}
    data = FieldDataset.load(train)
    training = data.subset(slice(0, n_train))
    held = heldout_data(data.recipe, n_heldout, data.grid)
    heldout_seed = held.recipe["seed"]
    result = {
        "settings": {
            "train": train, "n_train": len(training), "epochs": epochs, "seeds": list(seeds),
            "ssvae_seeds": list(ssvae_seeds), "n_heldout": n_heldout,
            "heldout_seed": heldout_seed, "gamma": gamma,
        },
        "models": {}, "labelled": {},
    }  # fmt: skip
    settings = {"train": train, "n_train": len(training), "n_heldout": n_heldout}
    cache = ResultCache(Path(out) / "runs", settings) if out is not None else None

    def scores(config, seed):
        if cache is None:
            return score(config, training, held, seed, threads)
        key = hashlib.sha1(repr((config, seed)).encode()).hexdigest()[:16]
        return cache.fetch(key, score, config, training, held, seed, threads)

    budget = {"epochs": epochs, "batch_size": batch_size}
    for name, config in MODELS.items():
        config = replace(config, **budget, **({"gamma": gamma} if name == "ssvae" else {}))
        result["models"][name] = [scores(config, s) for s in seeds]
        print(name, summary(result["models"][name])["lds_all"], flush=True)
    for frac in fractions:
        config = replace(MODELS["ssvae"], **budget, gamma=gamma, labelled_fraction=frac)
        result["labelled"][str(frac)] = [scores(config, s) for s in ssvae_seeds]
        print(f"ssvae {frac:.0%}", summary(result["labelled"][str(frac)])["lds_all"], flush=True)
    result["command"] = "python examples/compare_disentanglement.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in options.items()
        if k not in ("out", "write") and v is not None
    )
    block = markdown(result)
    if out is not None:
        write_json(Path(out) / "disentanglement.json", result)
        write_text(Path(out) / "disentanglement.md", block)
    if write:
        write_block(write, block)
    return result


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="Disentanglement of four VAEs over seeds")
    parser.add_argument("--train", default="data/source-train.npz", help="training data")
    parser.add_argument("--n-train", type=int, default=5000, help="training fields used")
    parser.add_argument("--n-heldout", type=int, default=10000, help="held-out fields")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per model")
    parser.add_argument("--batch-size", type=int, default=128, help="fields per step")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ssvae-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[0.0, 0.01],
        help="labelled fractions of the semi-supervised study",
    )
    parser.add_argument("--gamma", type=float, default=1.0, help="weight of the label term")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="results/compare_disentanglement", help="folder")
    parser.add_argument("--write", help="markdown file whose marked block is replaced")
    args = parser.parse_args()
    if not Path(args.train).is_file():
        parser.error(f"{args.train} not found; make it with `invprior simulate source ...`")
    result = run(**vars(args))
    summaries = {k: summary(v)["lds_all"]["mean"] for k, v in result["models"].items()}
    print(json.dumps({"lds_all_mean": summaries, "out": args.out}))


if __name__ == "__main__":
    main()
