# SPDX-License-Identifier: MIT
"""Every shipped generator loads and still meets the metrics recorded in its sidecar."""

import numpy as np
import pytest
import torch

from invprior.priors import DLCFMGenerator, GridSpec, load, pretrained_names, simulate
from invprior.priors.fidelity import fidelity_scores, prior_draws, radial_power_spectrum
from invprior.priors.train import evaluate_vae

SHIPPED = ("source-auxvae", "conductivity-auxvae", "source-betavae", "source-dlcfm")
# Held-out estimates on a fresh sample differ from the recorded ones by sampling noise.
TOLERANCE = {"lds_all": 0.02, "lds": 0.02, "ssim_median": 0.02, "aux_corr_min": 0.01}
# Targets of the source Aux-VAE on held-out data.
TARGETS = {"source-auxvae": {"lds": 0.97, "aux_corr_min": 0.99, "ssim_median": 0.95}}


def test_all_shipped():
    assert set(SHIPPED) <= set(pretrained_names())


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_frozen_on_default_grid(name):
    g = load(name, grid=GridSpec())
    assert not g.training and not any(p.requires_grad for p in g.parameters())
    meta = g.metadata
    assert meta["data"]["simulator"] in name and meta["metrics"]["heldout"]["n"] >= 10000
    assert all(p.dtype == torch.float32 for p in g.state_dict().values())
    z_aux, z_rec = torch.randn(3, g.aux_dim), torch.randn(3, g.rec_dim)
    torch.testing.assert_close(g.decode(z_aux, z_rec), g.decode(z_aux, z_rec), rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_meets_recorded_metrics_on_fresh_data(name):
    g = load(name)
    recorded = g.metadata["metrics"]
    held = recorded["heldout"]
    data = simulate(held["simulator"], held["n"], held["seed"] + 1)
    # the flow's reconstructions cost 16 network passes each: score fewer of them
    got = evaluate_vae(g, data, n_ssim=500 if isinstance(g, DLCFMGenerator) else 2000)
    for key, tol in TOLERANCE.items():
        if key in recorded:
            assert got[key] >= recorded[key] - tol, (key, got[key], recorded[key])
    for key, target in TARGETS.get(name, {}).items():
        assert got[key] >= target, (key, got[key], target)


@pytest.mark.slow
def test_dlcfm_takes_away_the_decoders_high_wavenumber_excess():
    g = load("source-dlcfm")
    assert isinstance(g, DLCFMGenerator)
    # the flow is trained over the shipped Aux-VAE, which its checkpoint keeps inside it
    base = load("source-auxvae")
    recorded = {"name": "source-auxvae", "sha256": base.metadata["sha256"]}
    assert g.metadata["training"]["base"] == recorded
    assert g.base.tau == base.tau and g.base.aux_names == base.aux_names
    held = g.metadata["metrics"]["heldout"]
    data = simulate(held["simulator"], 1000, held["seed"] + 1).fields
    draws = {"flow": prior_draws(g, 1000, seed=1), "vae": prior_draws(g.base, 1000, seed=1)}
    k, p_data = radial_power_spectrum(data)

    def high_k_log_ratio(x):  # mean log10 power ratio to the data's above wavenumber 10
        return float(np.mean(np.log10(radial_power_spectrum(x)[1][k >= 10] / p_data[k >= 10])))

    flow, vae = (high_k_log_ratio(x) for x in draws.values())
    # the decoder puts 1.8-2.2x the data's power above k = 10, the flow's draws 0.5-0.7x
    # (log10 +0.25..+0.35 and -0.27..-0.13 over four draw and data seeds): the flow
    # removes the excess, slightly overshooting, and stays within 2x of the data
    assert vae > 0.15 and flow < vae - 0.3 and abs(flow) < 0.3, (flow, vae)
    scores = {name: fidelity_scores(x, data) for name, x in draws.items()}
    # the draws as a whole are as close to the data as the decoder's
    energy = {name: s["energy_distance"] for name, s in scores.items()}
    assert energy["flow"] < energy["vae"] + 0.01, scores
