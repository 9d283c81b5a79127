# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # The reference posterior: a source study's data under the simulator's own prior
#
# A study such as `examples/source_identification.toml` answers with a learned prior. The
# simulator that drew its truth defines the exact prior: 14 independent uniform factors
# (`invprior.priors.simulate.SOURCE_PARAMETERS`: the four named ones, the anisotropy and
# orientation, the secondary source and the modulation). The source problem's forward map
# is affine (`SourceProblem.affine_map`), and `source_fields` evaluates the simulator in
# torch, so the exact-prior posterior can be sampled with NUTS over the 14 factors. Each
# factor is sampled in probit coordinates, $u = l + (h - l)\,\Phi(\zeta)$ with
# $\zeta \sim N(0, 1)$ a priori, as invprior samples its named sites.
#
# This is the yardstick for a study's named-parameter intervals and field coverage: what
# the exact prior cannot resolve from these data, no prior learned from the simulator can.
#
# `python examples/simulator_posterior.py examples/source_identification.toml`
#
# writes `reference.json`, `reference_summary.txt` and `reference_pair.png` to
# `results/simulator_posterior` (about 40 min on one core with the defaults) and
# prints the metrics as one JSON line.

# +
import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

from mpi4py import MPI

import arviz_base
import pyro
import torch
from pyro.infer import MCMC, NUTS

from invprior.diagnostics import field_summary, summarize_named
from invprior.fileio import save_figure, write_json, write_text
from invprior.priors import GridSpec
from invprior.priors.simulate import SOURCE_PARAMETERS, simulate, source_fields
from invprior.report import field_scores, plot_pair
from invprior.study import StudyConfig, build_study

NAMED = tuple(k for k, v in SOURCE_PARAMETERS.items() if v[3])
# -


class ExactPriorPotential:
    r"""Potential :math:`U(\zeta)` of the source posterior under the simulator's prior.

    .. math::

        U(\zeta) = \tfrac12 \|(y - F\,x(u(\zeta)) - c) / \sigma\|^2 + \tfrac12 \|\zeta\|^2,
        \qquad u_k = l_k + (h_k - l_k)\,\Phi(\zeta_k),

    with :math:`x(u)` the simulator's field (:func:`source_fields`) on the grid and
    :math:`(F, c)` the affine forward map; the uniform priors and the probit map's Jacobian
    together give the standard normal term.

    Args:
        ranges: Physical range ``(low, high)`` per factor, in sampling order.
        grid: The fields' grid.
        F: Observation matrix, shape ``(n_obs, ny * nx)``.
        c: Observations of a zero field, shape ``(n_obs,)``.
        data: Observations, shape ``(n_obs,)``.
        noise_std: Measurement noise std.
    """

    def __init__(self, ranges, grid, F, c, data, noise_std):
        self.names = tuple(ranges)
        bounds = torch.tensor([ranges[k] for k in self.names], dtype=torch.float64)
        self.low, self.span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        self.grid = grid
        self.F, self.c = torch.as_tensor(F), torch.as_tensor(c)
        self.data, self.noise_std = torch.as_tensor(data, dtype=torch.float64), noise_std

    def factors(self, zeta):
        """Physical factors ``{name: (n,)}`` of probit coordinates of shape ``(n, 14)``."""
        u = self.low + self.span * torch.special.ndtr(zeta)
        return {k: u[:, j] for j, k in enumerate(self.names)}

    def fields(self, zeta):
        """Fields of probit coordinates of shape ``(n, 14)``, shape ``(n, ny, nx)``."""
        return source_fields(self.factors(zeta), self.grid)

    def __call__(self, params):
        zeta = params["zeta"]
        prediction = self.fields(zeta[None])[0].reshape(-1) @ self.F.T + self.c
        misfit = (self.data - prediction) / self.noise_std
        return 0.5 * (misfit.square().sum() + zeta.square().sum())


def find_mode(potential, restarts, seed):
    """The lowest of ``restarts`` L-BFGS runs from prior draws of :math:`\\zeta`."""
    gen = torch.Generator().manual_seed(seed)
    best, best_energy = None, math.inf
    for _ in range(restarts):
        zeta = torch.randn(len(potential.names), generator=gen, dtype=torch.float64)
        zeta.requires_grad_(True)
        opt = torch.optim.LBFGS([zeta], max_iter=500, line_search_fn="strong_wolfe")

        def closure(zeta=zeta, opt=opt):
            opt.zero_grad()
            energy = potential({"zeta": zeta})
            energy.backward()
            return energy

        opt.step(closure)
        with torch.no_grad():
            energy = float(potential({"zeta": zeta}))
        if energy < best_energy:
            best, best_energy = zeta.detach().clone(), energy
    return best, best_energy


def sample(potential, start, args):
    """NUTS chains from ``start``: probit draws ``(chain, draw, 14)`` and the divergences."""
    chains, divergences = [], 0
    for k in range(args.chains):
        pyro.set_rng_seed(args.seed + 1 + k)
        kernel = NUTS(potential_fn=potential, full_mass=True, target_accept_prob=0.9)
        mcmc = MCMC(
            kernel,
            num_samples=args.samples,
            warmup_steps=args.warmup,
            initial_params={"zeta": start},
            disable_progbar=not args.progress,
        )
        mcmc.run()
        chains.append(mcmc.get_samples()["zeta"])
        divergences += len(mcmc.diagnostics()["divergences"]["chain 0"])
    return torch.stack(chains), divergences


def main():
    parser = argparse.ArgumentParser(
        description="Reference posterior of a source study under the simulator's own prior"
    )
    parser.add_argument("config", help="a source study's TOML file")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--restarts", type=int, default=8, help="L-BFGS restarts of the mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show NUTS progress bars")
    parser.add_argument("--out", default="results/simulator_posterior", help="output folder")
    args = parser.parse_args()

    config = StudyConfig.from_toml(args.config)
    if config.pde.kind != "source" or config.truth.simulator != "source":
        parser.error("the reference posterior needs a source problem with a 'source' truth")
    config = replace(
        config, approximation_error=replace(config.approximation_error, enabled=False)
    )
    setup = build_study(config, MPI.COMM_SELF)
    grid = GridSpec(setup.model.grid_shape, setup.model.grid_bbox)
    truth_data = simulate("source", config.truth.index + 1, config.truth.seed, grid)
    truth = {k: float(v[config.truth.index]) for k, v in truth_data.factors.items()}
    F, c = setup.model.affine_map()
    potential = ExactPriorPotential(
        {k: truth_data.ranges[k] for k in SOURCE_PARAMETERS},
        grid,
        F,
        c,
        setup.data,
        setup.noise_std,
    )
    start, energy = find_mode(potential, args.restarts, args.seed)
    zeta, divergences = sample(potential, start, args)

    with torch.no_grad():
        flat = zeta.reshape(-1, zeta.shape[-1])
        draws = {k: v.reshape(zeta.shape[:2]).numpy() for k, v in potential.factors(flat).items()}
        fields = potential.fields(flat).numpy()
    tree = arviz_base.from_dict(
        {"posterior": draws, "constant_data": {f"true_{k}": v for k, v in truth.items()}},
        attrs={"/": {"aux_names": json.dumps(NAMED)}},
    )
    table = summarize_named(tree, list(SOURCE_PARAMETERS))
    maps = {f"posterior_{k}": v for k, v in field_summary(fields).items()}
    maps["truth"] = setup.truth["field"]
    metrics = {
        **field_scores(maps, "posterior"),
        "named_hdi90": {n: [table.loc[n, "hdi90_lb"], table.loc[n, "hdi90_ub"]] for n in NAMED},
        "named_in_hdi90": {
            n: bool(table.loc[n, "hdi90_lb"] <= truth[n] <= table.loc[n, "hdi90_ub"])
            for n in NAMED
        },
        "ess_min": float(table["ess_bulk"].min()),
        "rhat_max": float(table["r_hat"].max()),
        "divergences": divergences,
        "mode_energy": energy,
        "config": args.config,
    }
    out = Path(args.out)
    write_text(out / "reference_summary.txt", table.to_string() + "\n")
    write_json(out / "reference.json", metrics)
    save_figure(plot_pair(tree), out / "reference_pair.png")
    print(table.to_string())
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
