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
# epochs) so that the whole study runs on a 2-core machine in about an hour (every
# finished run is kept in `OUT/runs/`, so an interrupted study resumes where it stopped):
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

from invprior.fileio import write_json, write_text
from invprior.priors.metrics import evaluate_generator
from invprior.priors.simulate import FieldDataset, simulate
from invprior.priors.train import VAETrainConfig, train_vae
from invprior.provenance import code_fingerprint

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


def subset(data, n):
    """The first ``n`` fields of ``data`` with their factors."""
    return FieldDataset(
        data.fields[:n], {k: v[:n] for k, v in data.factors.items()}, data.aux_names,
        data.units, data.ranges, data.grid, data.recipe,
    )  # fmt: skip


def score(config, train, held, seed, threads):
    """Train ``config`` with ``seed`` and return its held-out scores and wall time."""
    start = time.perf_counter()
    model, _ = train_vae(replace(config, seed=seed), train, progress=False, num_threads=threads)
    out = evaluate_generator(model.cpu(), held.fields, held.aux, held.aux_names, seed=seed)
    return {**{k: float(out[k]) for k in SCORES}, "train_s": time.perf_counter() - start}


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


def run(args):
    """Train every model over the seeds, then the 0% / 1% labelled study."""
    data = FieldDataset.load(args.train)
    train = subset(data, args.n_train)
    heldout_seed = int(data.recipe["seed"]) + 1_000_003
    held = simulate(data.recipe["simulator"], args.n_heldout, heldout_seed, data.grid)
    result = {
        "settings": {
            "train": args.train, "n_train": len(train), "epochs": args.epochs,
            "seeds": args.seeds, "ssvae_seeds": args.ssvae_seeds, "n_heldout": args.n_heldout,
            "heldout_seed": heldout_seed, "gamma": args.gamma,
        },
        "models": {}, "labelled": {},
    }  # fmt: skip
    cache = Path(args.out) / "runs"  # one file per finished run: a rerun resumes
    code = code_fingerprint()

    def scores(config, seed):
        """Scores of one run, from the cache when the same run with the same code has
        finished before."""
        key = repr((config, seed, args.train, len(train), args.n_heldout, code))
        path = cache / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
        if not path.is_file():
            write_json(path, score(config, train, held, seed, args.threads), indent=None)
        return json.loads(path.read_text())

    budget = {"epochs": args.epochs, "batch_size": args.batch_size}
    for name, config in MODELS.items():
        config = replace(config, **budget, **({"gamma": args.gamma} if name == "ssvae" else {}))
        result["models"][name] = [scores(config, s) for s in args.seeds]
        print(name, summary(result["models"][name])["lds_all"], flush=True)
    for frac in args.fractions:
        config = replace(MODELS["ssvae"], **budget, gamma=args.gamma, labelled_fraction=frac)
        result["labelled"][str(frac)] = [scores(config, s) for s in args.ssvae_seeds]
        print(f"ssvae {frac:.0%}", summary(result["labelled"][str(frac)])["lds_all"], flush=True)
    return result


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
    result = run(args)
    result["command"] = "python examples/compare_disentanglement.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k not in ("out", "write") and v is not None
    )
    write_json(Path(args.out) / "disentanglement.json", result)
    block = markdown(result)
    write_text(Path(args.out) / "disentanglement.md", block)
    if args.write:
        write_block(args.write, block)
    summaries = {k: summary(v)["lds_all"]["mean"] for k, v in result["models"].items()}
    print(json.dumps({"lds_all_mean": summaries, "out": args.out}))


if __name__ == "__main__":
    main()
