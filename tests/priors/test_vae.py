# SPDX-License-Identifier: MIT
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from generators import tiny_betavae, two_scale_auxvae

from invprior.cli import main
from invprior.priors import AuxVAE, GridSpec, simulate, simulate_sources
from invprior.priors.train import (
    TrainingDivergedError,
    VAETrainConfig,
    build_vae,
    consistency_weight,
    fit_rec_shift,
    named_consistency,
    nonfinite_weights,
    starting_model,
    train_vae,
    vae_loss,
)
from invprior.priors.train import vae as vae_module
from invprior.validation import InputError

GRID = GridSpec((16, 16))


def test_conditional_prior_and_affine_map(dtype):
    g = two_scale_auxvae(rec_dim=3, tau=0.2).to(dtype)
    u = torch.tensor([[0.8, 1.2]], dtype=dtype)
    mean, var = g.conditional_prior_moments(u, torch.zeros(1, 5, dtype=dtype))
    torch.testing.assert_close(mean, torch.tensor([[1.0, -1.0, 0, 0, 0]], dtype=dtype))
    torch.testing.assert_close(var, torch.tensor([[0.04, 0.04, 1, 1, 1]], dtype=dtype))
    torch.testing.assert_close(g.to_physical(g.to_latent(u)), u)


def test_input_checks():
    g = two_scale_auxvae(rec_dim=3)
    with pytest.raises(ValueError, match="z_aux"):
        g.decode(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(TypeError, match="generator.to"):
        g.decode(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="divisible"):
        AuxVAE(("a",), ("m",), {}, [0], [1], 2, grid=GridSpec((20, 20)), channels=(4, 4, 4))
    with pytest.raises(ValueError, match="BetaVAE"):
        AuxVAE((), (), {}, [], [], 2, grid=GRID)
    with pytest.raises(ValueError, match="model must be one of"):
        VAETrainConfig(model="vae")
    with pytest.raises(ValueError, match="batch_size"):
        VAETrainConfig(batch_size=4)


@pytest.mark.parametrize("model", ["auxvae", "betavae"])
def test_tiny_training_reduces_loss(model):
    data = simulate_sources(640, 0, GRID)
    cfg = VAETrainConfig(
        model=model,
        rec_dim=2,
        channels=(8, 16),
        hidden=32,
        epochs=6,
        batch_size=32,
        kl_warmup_epochs=1,
        patience=10,
        learning_rate=3e-3,
    )
    untrained = build_vae(cfg, data)
    x = torch.as_tensor(data.fields[:256])
    u = torch.as_tensor(data.aux[:256])
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(vae_loss(untrained, x, u, cfg.beta, cfg)["loss"])
    trained, hist = train_vae(cfg, data, progress=False, num_threads=1)
    torch.manual_seed(0)
    after = float(vae_loss(trained, x, u, cfg.beta, cfg)["loss"])
    assert after < 0.7 * before
    assert len(hist["val_loss"]) == 6 and all(math.isfinite(v) for v in hist["val_loss"])
    assert hist["val_loss"][-1] < hist["val_loss"][0]
    assert not trained.training and not any(p.requires_grad for p in trained.parameters())


def test_named_consistency_reads_back_with_the_encoder_and_trains_the_decoder_only():
    g = two_scale_auxvae(rec_dim=3).train()
    z_aux = torch.randn(32, 2)
    means = torch.randn(64, 5)
    torch.manual_seed(5)
    term = named_consistency(g, z_aux, means)
    torch.manual_seed(5)
    eps = torch.randn(32, 3)
    shift = torch.linalg.lstsq(g.rec_features(means[:, :2]), means[:, 2:]).solution
    read = g.encode(g.decode(z_aux, eps + g.rec_features(z_aux) @ shift))[0][:, :2]
    torch.testing.assert_close(term, 0.5 * ((read - z_aux) / g.tau).pow(2).sum(-1).mean())
    term.backward()
    assert all(p.grad is None for p in g.encoder.parameters())
    assert all(p.grad.abs().sum() > 0 for p in g.decoder_fc.parameters())


def test_named_consistency_draws_the_residual_block_where_the_fitted_prior_puts_it():
    # While training the residual shift is zero; the fitted shift of an inversion moves
    # the prior's residual block away from the origin. The term must not depend on which.
    data = simulate_sources(128, 0, GRID)
    x = torch.as_tensor(data.fields)
    g = two_scale_auxvae(rec_dim=3).requires_grad_(False)
    with torch.no_grad():
        training = g.encode(x)[0]
        z_aux = training[:40, :2]
        torch.manual_seed(3)
        while_training = named_consistency(g, z_aux, training)
        fit_rec_shift(g, x)
        assert float(g.rec_shift.abs().max()) > 0.1
        torch.manual_seed(3)
        fitted = named_consistency(g, z_aux, g.encode(x)[0])
    torch.testing.assert_close(while_training, fitted, rtol=1e-4, atol=0)


def test_consistency_training_keeps_the_residual_block_off_the_named_latent():
    data = simulate_sources(640, 0, GRID)
    common = dict(
        rec_dim=2, channels=(8, 16), hidden=32, epochs=6, batch_size=32, kl_warmup_epochs=1
    )
    spread = {}
    for lam in (0.0, 1.0):
        cfg = VAETrainConfig(**common, patience=10, learning_rate=3e-3, lambda_consistency=lam)
        trained, hist = train_vae(cfg, data, progress=False, num_threads=1)
        assert ("val_consistency" in hist) == (lam > 0)
        torch.manual_seed(0)
        means = trained.encode(torch.as_tensor(data.fields[:256]))[0]
        spread[lam] = float(named_consistency(trained, means[:, : trained.aux_dim], means))
    assert spread[1.0] < 0.5 * spread[0.0]


def test_consistency_on_part_of_the_batch_uses_its_first_rows(monkeypatch):
    g = two_scale_auxvae(rec_dim=3)
    data = simulate_sources(16, 0, GRID)
    x, u = torch.as_tensor(data.fields), torch.as_tensor(data.aux[:, :2]).float()
    seen = []

    def recording(model, z_aux, means):
        seen.append((len(z_aux), len(means)))
        return named_consistency(model, z_aux, means)

    monkeypatch.setattr(vae_module, "named_consistency", recording)
    for rows in (None, 5):
        cfg = VAETrainConfig(batch_size=16, lambda_consistency=1.0, consistency_batch_size=rows)
        assert torch.isfinite(vae_loss(g, x, u, 0.1, cfg)["consistency"])
    assert seen == [(16, 16), (5, 16)]  # the shift is fitted on the whole batch either way


def test_consistency_weight_starts_late_and_grows_linearly():
    cfg = VAETrainConfig(
        lambda_consistency=2.0, consistency_start_epochs=4, consistency_warmup_epochs=2, epochs=9
    )
    weights = [consistency_weight(cfg, e) for e in (0, 3.99, 4, 4.5, 5, 6, 8.9)]
    assert weights == pytest.approx([0, 0, 0, 0.5, 1, 2, 2])
    at_once = VAETrainConfig(lambda_consistency=2.0, consistency_start_epochs=4, epochs=9)
    assert [consistency_weight(at_once, e) for e in (3.99, 4)] == [0, 2]
    # the loss adds the term at the weight it is given, and leaves it out at 0
    g = two_scale_auxvae(rec_dim=3)
    data = simulate_sources(16, 0, GRID)
    x, u = torch.as_tensor(data.fields), torch.as_tensor(data.aux[:, :2]).float()
    terms = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        terms[weight] = vae_loss(g, x, u, 0.1, cfg, consistency_weight=weight)
    assert "consistency" not in terms[0.0]
    torch.testing.assert_close(
        terms[0.5]["loss"], terms[0.0]["loss"] + 0.5 * terms[0.5]["consistency"]
    )


def test_training_draws_the_consistency_term_only_after_its_start(monkeypatch):
    data = simulate_sources(160, 0, GRID)
    calls = []

    def counting(model, z_aux, means):
        calls.append(model.training)
        return named_consistency(model, z_aux, means)

    monkeypatch.setattr(vae_module, "named_consistency", counting)
    common = dict(
        rec_dim=1, channels=(4, 8), hidden=8, epochs=4, batch_size=32, kl_warmup_epochs=0
    )
    steps = 144 // 32  # 90% of the fields train
    history = {}
    for start in (0, 2):
        calls.clear()
        cfg = VAETrainConfig(
            **common, lambda_consistency=1.0, consistency_start_epochs=start, patience=1
        )
        _, history[start] = train_vae(cfg, data, progress=False, num_threads=1)
        assert sum(calls) == (4 - start) * steps  # training steps; validation always has it
    # early stopping and the best epoch wait for the whole objective
    assert history[2]["best_epoch"] >= 3
    late = VAETrainConfig(
        lambda_consistency=1.0,
        consistency_start_epochs=3,
        consistency_warmup_epochs=2,
        kl_warmup_epochs=4,
        epochs=9,
    )
    assert vae_module._warmup_epochs(late) == 5
    assert vae_module._warmup_epochs(dataclasses.replace(late, lambda_consistency=0.0)) == 4


def test_consistency_weight_is_checked():
    with pytest.raises(InputError, match="lambda_consistency applies to an auxvae only"):
        VAETrainConfig(model="betavae", lambda_consistency=1.0)
    with pytest.raises(InputError, match="non-negative: {'lambda_consistency': -1.0}"):
        VAETrainConfig(lambda_consistency=-1.0)
    with pytest.raises(InputError, match="lambda_consistency"):
        VAETrainConfig(lambda_consistency="1")
    for rows in (0, 65):
        with pytest.raises(InputError, match=f"between 1 and batch_size \\(64\\), got {rows}"):
            VAETrainConfig(lambda_consistency=1.0, consistency_batch_size=rows)
    with pytest.raises(InputError, match="consistency_batch_size must be an integer"):
        VAETrainConfig(consistency_batch_size=8.5)
    with pytest.raises(InputError, match="never reach its weight: .* = 20 must be below epochs"):
        VAETrainConfig(
            lambda_consistency=1.0,
            consistency_start_epochs=16,
            consistency_warmup_epochs=4,
            epochs=20,
        )
    with pytest.raises(InputError, match="non-negative: {'consistency_start_epochs': -1.0}"):
        VAETrainConfig(consistency_start_epochs=-1.0)
    with pytest.raises(InputError, match="consistency_warmup_epochs"):
        VAETrainConfig(consistency_warmup_epochs="2")


def test_training_is_seeded():
    data = simulate_sources(200, 0, GRID)
    cfg = VAETrainConfig(
        rec_dim=1, channels=(4, 8), hidden=8, epochs=1, batch_size=32, kl_warmup_epochs=0
    )
    a, _ = train_vae(cfg, data, progress=False, num_threads=1)
    b, _ = train_vae(cfg, data, progress=False, num_threads=1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)


def test_rec_shift_is_exact_and_decorrelates(dtype):
    g = two_scale_auxvae(rec_dim=3).to(dtype).eval()
    x = torch.randn(400, 16, 16, dtype=dtype)
    mu0, logvar0 = g.encode(x)
    recon0 = g.decode_latent(mu0)
    fit_rec_shift(g, x)
    mu1, logvar1 = g.encode(x)
    torch.testing.assert_close(mu1[:, :2], mu0[:, :2])
    torch.testing.assert_close(logvar1, logvar0)
    torch.testing.assert_close(g.decode_latent(mu1), recon0)
    feats = g.rec_features(mu1[:, :2])[:, 1:]
    rec = mu1[:, 2:]
    cross = (feats - feats.mean(0)).T @ (rec - rec.mean(0)) / len(rec)
    assert cross.abs().max() < 1e-4


def test_positive_output_is_non_negative():
    g = tiny_betavae(channels=(4, 8), field_scale=0.5, positive=True)
    assert (g.decode(torch.zeros(50, 0), 5 * torch.randn(50, 3)) >= 0).all()


def test_simulate_and_train_commands(tmp_path, capsys):
    from invprior.cli import main
    from invprior.priors import load

    data = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "160", "--seed", "4", "--out", str(data)]) == 0
    out = tmp_path / "g"
    args = ["train", "auxvae", "--data", str(data), "--out", str(out), "--epochs", "1"]
    args += ["--batch-size", "32", "--rec-dim", "2", "--eval-n", "40", "--no-progress"]
    args += ["--threads", "1"]
    assert main([*args, "--positive", "--kl-warmup-epochs", "0"]) == 0
    g = load(out)
    meta = g.metadata
    assert meta["data"]["seed"] == 4 and meta["metrics"]["heldout"]["n"] == 40
    assert meta["training"]["config"]["positive"] is True and g.positive
    assert set(meta["metrics"]) >= {"lds", "lds_all", "aux_corr_min", "ssim_median"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 8.5}, "epochs must be an integer, got 8.5"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"positive": "yes"}, "positive must be true or false"),
        ({"learning_rate": "1e-3"}, "learning_rate must be a number"),
        ({"learning_rate": float("nan")}, "learning_rate must be finite"),
        ({"channels": (4, 8.0)}, r"channels\[1\] must be an integer"),
        ({"epochs": 0}, "must be positive: {'epochs': 0}"),
        ({"beta": -1}, "must be non-negative: {'beta': -1.0}"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_config_is_strict(settings, message):
    with pytest.raises(InputError, match=message):
        VAETrainConfig(**settings)


def test_config_converts_lists_and_ints():
    cfg = VAETrainConfig(channels=[4, 8], learning_rate=1, kl_warmup_epochs=2)
    assert cfg.channels == (4, 8)
    assert type(cfg.learning_rate) is float and type(cfg.kl_warmup_epochs) is float


def _tiny(**kwargs):
    settings = {"rec_dim": 1, "channels": (4, 8), "hidden": 8, "epochs": 2, "batch_size": 16}
    return VAETrainConfig(**{**settings, "kl_warmup_epochs": 0, **kwargs})


def test_training_rejects_non_finite_data_before_any_step(monkeypatch):
    data = simulate("source", 64, 0, GRID)
    data.fields[[5, 9], 3, 3] = np.nan  # changed after the checks of construction
    data.factors["x0"][2] = np.inf

    def untouched(*args):
        raise AssertionError("training started")

    monkeypatch.setattr(vae_module, "build_vae", untouched)
    with pytest.raises(InputError, match=r"fields in 2 of 64 samples \(rows \[5, 9\]\)") as err:
        train_vae(_tiny(), data, progress=False, num_threads=1)
    assert "factors['x0'] in 1 of 64 samples (rows [2])" in str(err.value)


@pytest.mark.parametrize("rec_shift", [True, False])
def test_divergence_stops_at_the_first_non_finite_loss(rec_shift):
    data = simulate("source", 64, 0, GRID)
    with pytest.raises(TrainingDivergedError) as err:
        train_vae(_tiny(learning_rate=1e6, rec_shift=rec_shift), data, progress=False)
    message = str(err.value)
    assert "epoch 1, step " in message and "lower learning_rate (now 1e+06, try 100000)" in message
    assert isinstance(err.value, RuntimeError)


def test_training_returns_finite_weights():
    model, history = train_vae(_tiny(), simulate("source", 64, 0, GRID), progress=False)
    assert nonfinite_weights(model) == [] and all(map(math.isfinite, history["train_loss"]))


def test_small_or_unnamed_data_are_input_errors():
    with pytest.raises(InputError, match="dataset of 20 samples is too small"):
        train_vae(_tiny(), simulate("source", 20, 0, GRID), progress=False)
    data = simulate("source", 64, 0, GRID)
    data.aux_names = ()
    with pytest.raises(InputError, match="needs data with named factors"):
        train_vae(_tiny(), data, progress=False)


def test_rec_shift_refuses_non_finite_input_and_leaves_the_model_unchanged():
    g = two_scale_auxvae(rec_dim=3).eval()
    x = torch.randn(50, 16, 16)
    x[7, 1, 1] = float("nan")
    before = g.rec_shift.clone()
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_rec_shift(g, x)
    next(g.encoder.parameters()).data.fill_(float("inf"))
    with pytest.raises(TrainingDivergedError, match="encoder means"):
        fit_rec_shift(g, torch.randn(50, 16, 16))
    torch.testing.assert_close(g.rec_shift, before, rtol=0, atol=0)


@pytest.fixture
def data_file(tmp_path):
    return simulate("source", 64, 4).save(tmp_path / "d.npz")


def _train(data, out, *extra):
    args = ["train", "auxvae", "--data", str(data), "--out", str(out), "--epochs", "1"]
    return main([*args, "--batch-size", "16", "--eval-n", "0", "--no-progress", *extra])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--epochs", "0"), "bad option value: these settings must be positive: {'epochs': 0}"),
        (("--threads", "0"), "--threads must be >= 1 (torch threads per process), got 0"),
        (("--eval-n", "-1"), "--eval-n must be >= 0"),
        (("--kl-schedule", "cubic"), "kl_schedule must be one of"),
        (("--steps", "3"), "--steps do not apply to auxvae"),
        (("--base", "source-auxvae"), "--base do not apply to auxvae"),
    ],
)
def test_train_command_checks_options(data_file, tmp_path, capsys, extra, message):
    out = tmp_path / "out" / "g"
    assert _train(data_file, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("invprior train: error: ") and message in err
    assert not out.parent.exists()


def test_train_command_refuses_bad_data_files(tmp_path, capsys):
    out = tmp_path / "out" / "g"
    assert _train(tmp_path / "missing.npz", out) == 2
    assert "missing.npz: no such file" in capsys.readouterr().err
    (tmp_path / "text.npz").write_text("x0,y0\n0.5,0.5\n")
    assert _train(tmp_path / "text.npz", out) == 2
    err = capsys.readouterr().err
    assert "text.npz is not an .npz archive" in err and "pickled" not in err
    assert not out.parent.exists()


def test_train_command_writes_nothing_for_non_finite_data(data_file, tmp_path, capsys):
    with np.load(data_file) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["fields"][3] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    out = tmp_path / "out" / "g"
    assert _train(tmp_path / "nan.npz", out, "--no-rec-shift") == 2
    assert "NaN or Inf values: fields in 1 of 64 samples (rows [3])" in capsys.readouterr().err
    assert not out.parent.exists()


def test_train_command_reports_divergence_and_writes_nothing(data_file, tmp_path, capsys):
    out = tmp_path / "out" / "g"
    assert _train(data_file, out, "--learning-rate", "1e6", "--no-rec-shift") == 2
    err = capsys.readouterr().err
    assert "training diverged: the loss became nan at epoch 1" in err
    assert "lower learning_rate" in err and "nothing was written" in err
    assert not out.parent.exists()


def test_train_command_probes_the_output_folder_first(data_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vae_module, "build_vae", lambda *a: pytest.fail("training started"))
    (tmp_path / "file").write_text("")
    assert _train(data_file, tmp_path / "file" / "g") == 2
    assert "is a file, so the folder" in capsys.readouterr().err
    assert _train(data_file, tmp_path) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "file"]


def test_train_command_evaluation_needs_a_known_simulator(data_file, tmp_path, capsys):
    with np.load(data_file) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["meta"]))
    meta["recipe"]["simulator"] = "darcy"
    np.savez(tmp_path / "other.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    args = ["train", "auxvae", "--data", str(tmp_path / "other.npz"), "--out", str(tmp_path / "g")]
    assert main([*args, "--eval-n", "5"]) == 2
    assert "names simulator 'darcy'" in capsys.readouterr().err


def test_training_continues_from_a_trained_generator():
    data = simulate("source", 64, 0, GRID)
    first, _ = train_vae(_tiny(epochs=3, rec_shift=False), data, progress=False, num_threads=1)
    weights = {k: v.clone() for k, v in first.state_dict().items()}
    other = simulate("source", 64, 1, GRID)
    more, history = train_vae(_tiny(epochs=1), other, init=first, progress=False, num_threads=1)
    fresh, fresh_history = train_vae(_tiny(epochs=1), other, progress=False, num_threads=1)
    assert history["train_loss"][0] < fresh_history["train_loss"][0]
    start = starting_model(_tiny(), other, first)
    z = torch.randn(5, first.aux_dim + first.rec_dim)
    torch.testing.assert_close(start.decode_latent(z), first.decode_latent(z), rtol=0, atol=0)
    assert all(p.requires_grad for p in start.parameters())
    for k, v in first.state_dict().items():  # the generator started from is left alone
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)
    assert not any(p.requires_grad for p in first.parameters())
    assert any((more.state_dict()[k] != v).any() for k, v in weights.items())
    other.fields *= 3.0  # other statistics: the generator keeps the normalisation it learnt
    scaled, _ = train_vae(_tiny(epochs=1), other, init=first, progress=False, num_threads=1)
    assert scaled.config()["field_scale"] == first.config()["field_scale"]
    assert fresh.config()["field_scale"] != first.config()["field_scale"]


def test_a_shifted_generator_restarts_from_the_network_training_left():
    data = simulate("source", 64, 0, GRID)
    first, _ = train_vae(_tiny(epochs=1, rec_dim=2), data, progress=False, num_threads=1)
    assert first.rec_shift.abs().max() > 0
    start = starting_model(_tiny(rec_dim=2), data, first)
    assert start.rec_shift.abs().max() == 0 and first.rec_shift.abs().max() > 0
    x = torch.as_tensor(data.fields[:8])
    with torch.no_grad():
        recon = [g.decode_latent(g.encode(x)[0]) for g in (first, start)]
    torch.testing.assert_close(recon[1], recon[0], rtol=1e-4, atol=1e-5)


def test_a_generator_to_start_from_must_fit_the_settings_and_data():
    data = simulate("source", 64, 0, GRID)
    first, _ = train_vae(_tiny(epochs=1), data, progress=False, num_threads=1)
    with pytest.raises(InputError) as err:
        train_vae(_tiny(rec_dim=2, hidden=16), data, init=first, progress=False)
    assert "rec_dim: 1 in the generator, 2 here" in str(err.value)
    assert "hidden: 8 in the generator, 16 here" in str(err.value)
    with pytest.raises(InputError, match=r"grid: .* in the generator"):
        train_vae(_tiny(), simulate("source", 64, 0, GridSpec((8, 8))), init=first)
    with pytest.raises(InputError, match="is AuxVAE; `betavae` training starts from BetaVAE"):
        train_vae(_tiny(model="betavae"), data, init=first, progress=False)


def test_fine_tuning_may_narrow_the_link():
    data = simulate("source", 64, 0, GRID)
    first, _ = train_vae(_tiny(epochs=1), data, progress=False, num_threads=1)
    start = starting_model(_tiny(tau=first.tau / 2), data, first)
    assert start.tau == first.tau / 2 and first.tau == _tiny().tau
    mu = torch.zeros(3, first.aux_dim + first.rec_dim)
    u = torch.as_tensor(data.aux[:3])
    var = [g.conditional_prior_moments(u, mu)[1][:, : g.aux_dim] for g in (first, start)]
    torch.testing.assert_close(var[1], var[0] / 4)
    narrowed, _ = train_vae(_tiny(epochs=1, tau=first.tau / 2), data, init=first, progress=False)
    assert narrowed.config()["tau"] == first.tau / 2


def test_train_command_continues_from_a_checkpoint(data_file, tmp_path, capsys):
    first = tmp_path / "first"
    assert _train(data_file, first) == 0
    sha = json.loads(first.with_suffix(".json").read_text())["sha256"]
    capsys.readouterr()
    assert _train(data_file, tmp_path / "more", "--init", str(first)) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training["init"] == {"name": str(first), "sha256": sha}
    out = tmp_path / "bad" / "g"
    assert _train(data_file, out, "--init", str(first), "--rec-dim", "3") == 2
    err = capsys.readouterr().err
    assert f"--init {first}: the generator to start from does not fit" in err
    assert "rec_dim: 8 in the generator, 3 here" in err
    assert _train(data_file, out, "--init", str(tmp_path / "missing")) == 2
    assert f"--init {tmp_path / 'missing'}: cannot load the generator" in capsys.readouterr().err
    assert not out.parent.exists()
