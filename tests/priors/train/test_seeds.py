# SPDX-License-Identifier: MIT
"""One run of a seed study, and the LDS spread over seeds built from it."""

import numpy as np
import pytest

from invprior.priors import GridSpec
from invprior.priors.simulate import simulate
from invprior.priors.train import VAETrainConfig, lds_over_seeds
from invprior.priors.train.seeds import train_and_evaluate

GRID = GridSpec((16, 16))
CONFIG = VAETrainConfig(rec_dim=1, channels=(4, 8), hidden=8, epochs=1, batch_size=32)


def test_one_run_is_one_entry_of_the_spread_over_seeds():
    data, held = simulate("source", 64, 0, GRID), simulate("source", 48, 1, GRID)
    seen = []

    def evaluate(model, heldout, seed):
        seen.append((type(model).__name__, len(heldout), seed, model.training))
        return {"lds_all": 0.25, "seed": seed}

    assert train_and_evaluate(CONFIG, data, held, 7, evaluate) == {"lds_all": 0.25, "seed": 7}
    assert seen == [("AuxVAE", 48, 7, False)]
    one = train_and_evaluate(CONFIG, data, held, 3)
    spread = lds_over_seeds(CONFIG, data, held, seeds=[3])
    assert spread["scores"] == [one["lds_all"]] and spread["std"] == 0.0
    with pytest.raises(ValueError, match="seeds is empty"):
        lds_over_seeds(CONFIG, data, held, seeds=[])


def test_spread_over_two_seeds_of_a_semisupervised_vae():
    data = simulate("source", 128, 0, GRID)
    cfg = VAETrainConfig(
        model="ssvae", rec_dim=1, channels=(4, 8), hidden=8, epochs=1, batch_size=32
    )
    out = lds_over_seeds(cfg, data, simulate("source", 64, 1, GRID), seeds=[0, 1])
    assert out["seeds"] == [0, 1] and len(out["scores"]) == 2
    assert out["mean"] == pytest.approx(np.mean(out["scores"]))
    assert out["std"] == pytest.approx(np.std(out["scores"]))
    assert 0 < out["mean"] <= 1 and out["std"] >= 0
