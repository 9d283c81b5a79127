# SPDX-License-Identifier: MIT
"""Training the DL-CFM residual flow: loss goes down, EMA, time limit, seeds, bad input."""

import numpy as np
import pytest
import torch
from generators import tiny_betavae

from invprior.cli import main
from invprior.priors import AuxVAE, DLCFMGenerator, GridSpec, simulate
from invprior.priors.train import (
    DLCFMTrainConfig,
    TrainingDivergedError,
    nonfinite_weights,
    train_dlcfm,
)
from invprior.priors.train import dlcfm as dlcfm_module
from invprior.validation import InputError

GRID = GridSpec((16, 16))


@pytest.fixture(scope="module")
def data():
    return simulate("source", 96, 0, GRID)


def _base(data):
    # the Aux-VAE of the data's four named factors, scaled by the data's statistics
    torch.manual_seed(0)
    names = data.aux_names
    ranges = {k: data.ranges[k] for k in names}
    mean, std = data.aux.mean(0).tolist(), data.aux.std(0).tolist()
    units = [data.units[k] for k in names]
    return AuxVAE(names, units, ranges, mean, std, 2, GRID, (4, 8), 16, 0.1, 0.1, 0.2)


def _config(**kwargs):
    settings = {"channels": 4, "embed": 8, "steps": 2, "epochs": 4, "batch_size": 16}
    return DLCFMTrainConfig(**{**settings, "learning_rate": 1e-2, "ema_decay": 0.0, **kwargs})


def test_loss_goes_down_and_the_generator_is_frozen(data):
    base = _base(data)
    g, history = train_dlcfm(_config(), data, base, progress=False)
    assert isinstance(g, DLCFMGenerator) and g.base is base and not g.training
    assert not any(p.requires_grad for p in g.parameters())
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["steps_run"] == 4 * (91 // 16) and not history["stopped_on_time"]
    x = torch.as_tensor(data.fields)
    r, _, _ = g.training_pairs(x)
    assert float(g.residual_scale) == pytest.approx(float((r * g.residual_scale).std()), rel=0.1)
    z = torch.zeros(g.aux_dim), torch.zeros(g.rec_dim)
    assert g.decode(*z, torch.randn(3, *GRID.shape)).shape == (3, *GRID.shape)


def test_same_seed_same_weights_and_ema_smooths(data):
    a, _ = train_dlcfm(_config(epochs=1), data, _base(data), progress=False)
    b, _ = train_dlcfm(_config(epochs=1), data, _base(data), progress=False)
    c, _ = train_dlcfm(_config(epochs=1, ema_decay=0.9), data, _base(data), progress=False)
    pairs = zip(a.velocity.named_parameters(), b.velocity.parameters(), strict=True)
    for (name, pa), pb in pairs:
        torch.testing.assert_close(pa, pb, msg=name)
    assert any(
        not torch.allclose(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )


def test_time_limit_stops_after_an_epoch(data):
    _, history = train_dlcfm(_config(max_minutes=1e-6), data, _base(data), progress=False)
    assert history["epoch"] == [1] and history["stopped_on_time"]


def test_bad_input(data):
    with pytest.raises(ValueError, match="grid"):
        train_dlcfm(_config(), simulate("source", 8, 0, GridSpec((8, 8))), _base(data))
    with pytest.raises(ValueError, match="method"):
        DLCFMTrainConfig(method="rk4")
    with pytest.raises(ValueError, match="ema_decay"):
        DLCFMTrainConfig(ema_decay=1.0)


def test_command_trains_scores_and_saves(tmp_path):
    from invprior.cli import main
    from invprior.priors import load

    data = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "96", "--seed", "4", "--out", str(data)]) == 0
    out = tmp_path / "flow"
    args = ["train", "dlcfm", "--data", str(data), "--out", str(out), "--base", "source-auxvae"]
    args += ["--epochs", "1", "--batch-size", "32", "--channels", "2", "--steps", "1"]
    assert main([*args, "--eval-n", "20", "--no-progress", "--threads", "1"]) == 0
    g = load(out)
    assert isinstance(g, DLCFMGenerator) and (g.steps, g.velocity.channels) == (1, 2)
    meta = g.metadata
    assert meta["training"]["base"]["sha256"] == load("source-auxvae").metadata["sha256"]
    assert set(meta["metrics"]["fidelity"]) == {"dlcfm", "auxvae"}
    assert meta["metrics"]["fidelity"]["dlcfm"]["n"] == 20 and "lds_all" in meta["metrics"]
    assert nonfinite_weights(g) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"channels": 2.5}, "channels must be an integer, got 2.5"),
        ({"ema_decay": "0.9"}, "ema_decay must be a number"),
        ({"max_minutes": float("inf")}, "max_minutes must be finite"),
        ({"epochs": 0}, "must be positive: {'epochs': 0}"),
        ({"learning_rate": -1}, "'learning_rate': -1.0"),
        ({"seed": -2}, "seed must be >= 0"),
        ({"device": "gpu"}, "device must be"),
    ],
)
def test_config_is_strict(settings, message):
    with pytest.raises(InputError, match=message):
        DLCFMTrainConfig(**settings)


def test_bad_data_or_base_is_refused_before_any_step(data, monkeypatch):
    monkeypatch.setattr(dlcfm_module, "DLCFMGenerator", lambda *a: pytest.fail("training started"))
    nan = simulate("source", 40, 1, GRID)
    nan.fields[[0, 7, 8]] = np.inf
    with pytest.raises(InputError, match=r"fields in 3 of 40 samples \(rows \[0, 7, 8\]\)"):
        train_dlcfm(_config(), nan, _base(data), progress=False)
    broken = _base(data)
    broken.rec_shift.fill_(float("nan"))
    with pytest.raises(InputError, match=r"base has non-finite weights in \['rec_shift'\]"):
        train_dlcfm(_config(), data, broken, progress=False)
    with pytest.raises(InputError, match="must be an AuxVAE, got a BetaVAE"):
        train_dlcfm(_config(), data, tiny_betavae(latent_dim=2, channels=(4, 8), hidden=8))
    with pytest.raises(InputError, match="dataset of 1 samples is too small"):
        train_dlcfm(_config(), simulate("source", 1, 0, GRID), _base(data), progress=False)


def test_divergence_stops_at_the_first_non_finite_loss(data):
    with pytest.raises(TrainingDivergedError) as err:
        train_dlcfm(_config(learning_rate=1e6), data, _base(data), progress=False)
    assert "epoch 1, step " in str(err.value)
    assert "lower learning_rate (now 1e+06, try 100000)" in str(err.value)


def _flow(data, out, *extra):
    return main(["train", "dlcfm", "--data", str(data), "--out", str(out), *extra])


def test_command_refuses_bad_options_and_bases(tmp_path, capsys):
    data = simulate("source", 64, 4).save(tmp_path / "d.npz")
    out = tmp_path / "out" / "flow"
    assert _flow(data, out) == 2
    assert "invprior train: error: --base (the Aux-VAE" in capsys.readouterr().err
    assert _flow(data, out, "--base", "source-auxvae", "--positive", "--rec-dim", "3") == 2
    assert "--rec-dim, --positive do not apply to dlcfm" in capsys.readouterr().err
    assert _flow(data, out, "--base", "source-auxvae", "--init", "source-auxvae") == 2
    assert "--init do not apply to dlcfm" in capsys.readouterr().err
    assert _flow(data, out, "--base", str(tmp_path / "nothing")) == 2
    err = capsys.readouterr().err
    assert f"--base {tmp_path / 'nothing'}: cannot load the Aux-VAE" in err
    assert _flow(data, out, "--base", "source-betavae", "--eval-n", "0") == 2
    assert "--base source-betavae is a BetaVAE; dlcfm builds on an AuxVAE" in (
        capsys.readouterr().err
    )
    assert not out.parent.exists()
