# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # How close are prior draws to the data? DL-CFM against its Aux-VAE
#
# Both priors share one latent (named $x_0, y_0$, amplitude, width and ten residual
# coordinates); the DL-CFM generator adds to the Aux-VAE decoder's field a flow-generated
# residual. Draw from both priors with the same latents, compare with held-out simulator
# fields by the radially averaged power spectrum, the pixel-wise mean and std maps and
# the energy distance of pooled fields (:mod:`invprior.priors.fidelity`), and look.
#
# Run with `python examples/dlcfm_fidelity.py --out results/dlcfm_fidelity`.

# +
import argparse
import json
from pathlib import Path

from invprior import priors
from invprior.fileio import save_figure, write_json
from invprior.priors.fidelity import fidelity_scores, plot_fidelity, prior_draws
from invprior.priors.simulate import simulate

# -


def run(prior="source-dlcfm", n=1000, seed=5, out=None):
    """Fidelity scores of ``n`` draws of the DL-CFM prior and of its Aux-VAE."""
    flow = priors.load(prior)
    data = simulate(flow.training_data["simulator"], n, seed, flow.grid).fields
    draws = {"dl-cfm": prior_draws(flow, n, seed), "aux-vae": prior_draws(flow.base, n, seed)}
    result = {name: fidelity_scores(x, data) for name, x in draws.items()}
    if out is not None:
        save_figure(plot_fidelity(data, draws), Path(out) / "fidelity.png")
        write_json(Path(out) / "fidelity.json", result)
    return result


def main():
    parser = argparse.ArgumentParser(description="Prior draws against held-out fields")
    parser.add_argument("--prior", default="source-dlcfm", help="DL-CFM checkpoint")
    parser.add_argument("--n", type=int, default=1000, help="draws and held-out fields")
    parser.add_argument("--seed", type=int, default=5, help="seed of the data and the draws")
    parser.add_argument("--out", default="results/dlcfm_fidelity", help="output folder")
    args = parser.parse_args()
    print(json.dumps(run(args.prior, args.n, args.seed, args.out)))


if __name__ == "__main__":
    main()
