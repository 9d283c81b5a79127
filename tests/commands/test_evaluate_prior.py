# SPDX-License-Identifier: MIT
"""``invprior evaluate-prior`` on a tiny PCA generator over real simulated source fields."""

import functools
import json

import numpy as np
import pytest
import torch

from invprior import priors
from invprior.cli import main
from invprior.priors import AuxVAE, Generator, GridSpec, save
from invprior.priors.metrics import lds_ceiling
from invprior.priors.simulate import simulate_sources

GRID = GridSpec((16, 16))
NAMES = ("x0", "y0", "amplitude", "width")


@functools.cache
def _principal_components():
    data = simulate_sources(400, seed=0, grid=GRID)
    flat = torch.as_tensor(data.fields.reshape(400, -1), dtype=torch.float64)
    mean = flat.mean(0)
    _, s, vt = torch.linalg.svd(flat - mean, full_matrices=False)
    return dict(data.recipe), mean, s, vt


class PCAGenerator(Generator):
    """x = mean + z V_k^T (leading principal components); encode is the projection."""

    def __init__(self, aux_names=NAMES, rec_dim=4, recipe=None):
        super().__init__()
        training_recipe, mean, s, vt = _principal_components()
        d = len(aux_names)
        k = d + rec_dim
        self._init_aux(
            aux_names,
            ("1",) * d,
            {n: (0.0, 1.0) for n in aux_names},
            torch.zeros(d, dtype=torch.float64),
            torch.ones(d, dtype=torch.float64),
        )
        self.rec_dim = rec_dim
        self.grid = GRID
        self.metadata = {"data": training_recipe if recipe is None else recipe}
        scale = s[:k] / np.sqrt(400)
        self.register_buffer("mean", mean)
        self.register_buffer("basis", vt[:k] * scale[:, None])
        self.register_buffer("inverse", vt[:k] / scale[:, None])

    def decode(self, z_aux, z_rec, eps=None):
        self._refuse_eps(eps)
        z = torch.cat([z_aux, z_rec], dim=-1)
        return (self.mean + z @ self.basis).reshape(*z.shape[:-1], *self.grid.shape)

    def encode(self, x):
        mu = (x.reshape(*x.shape[:-2], -1) - self.mean) @ self.inverse.T
        return mu, torch.zeros_like(mu)


@pytest.fixture
def loaded(monkeypatch):
    """Make ``priors.load`` return the given generator."""

    def install(gen):
        monkeypatch.setattr(priors, "load", lambda name: gen, raising=False)

    return install


def test_prints_table_and_json_last_and_writes_figures(loaded, capsys, tmp_path):
    loaded(PCAGenerator())
    out = tmp_path / "figs"
    assert main(["evaluate-prior", "tiny", "--n", "120", "--seed", "7", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    for key in ("lds", "sap", "mig", "dci_disentanglement", "ssim_median", "explicitness"):
        assert key in summary
    assert summary["simulator"] == "source" and summary["n"] == 120
    assert set(summary["explicitness"]) == set(NAMES)
    assert 0 < summary["lds"] <= 1 and summary["ssim_median"] > 0.5
    assert any(line.strip().startswith("SSIM median") for line in lines[:-1])
    # a linear generator's range holds PCA-reconstructed fields only up to what PCA drops
    assert summary["n_projection"] == 50 and 0 < summary["projection_error_median"] < 0.5
    projection = [line for line in lines[:-1] if "projection error, median of 50" in line]
    assert f"{summary['projection_error_median']:8.4f}" in projection[0]
    # every LDS is printed with the ceiling of a perfect code on as many fields
    assert summary["lds_ceiling"] == pytest.approx(lds_ceiling(len(NAMES), 120))
    ceilings = [line for line in lines[:-1] if "ceiling of a perfect code" in line]
    assert len(ceilings) == 2 and f"{summary['lds_ceiling']:8.4f}" in ceilings[0]
    own = [line for line in lines[:-1] if "the named factors as their own code" in line]
    assert 0.5 < summary["lds_of_factors"] <= 1 and f"{summary['lds_of_factors']:8.4f}" in own[0]
    names = sorted(p.name for p in out.iterdir())
    figures = ["latent_factor_grid.png", "reconstructions.png", "traversals.png"]
    assert names == sorted([*figures, "metrics.json"])
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in figures)
    assert summary["figures"] == [
        str(out / n) for n in ("traversals.png", "latent_factor_grid.png", "reconstructions.png")
    ]
    assert json.loads((out / "metrics.json").read_text()) == summary


def test_baseline_without_aux_block(loaded, capsys):
    loaded(PCAGenerator(aux_names=(), rec_dim=6))
    assert main(["evaluate-prior", "tiny", "--n", "150", "--seed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scored_latents"] == "all" and "explicitness" not in summary


def test_refuses_training_seed_and_unknown_simulator(loaded, capsys):
    loaded(PCAGenerator())
    assert main(["evaluate-prior", "tiny", "--seed", "0"]) == 2
    assert "training data seed" in capsys.readouterr().err
    loaded(PCAGenerator(recipe={}))
    assert main(["evaluate-prior", "tiny", "--n", "100"]) == 2
    assert "--simulator" in capsys.readouterr().err


def test_load_failure_is_an_error_message(monkeypatch, capsys):
    def fail(name):
        raise FileNotFoundError(f"no prior {name}")

    monkeypatch.setattr(priors, "load", fail, raising=False)
    assert main(["evaluate-prior", "missing"]) == 2
    assert "cannot load prior 'missing'" in capsys.readouterr().err


def test_real_checkpoint_round_trip(tmp_path, capsys):
    gen = AuxVAE(
        NAMES,
        ("m", "m", "1", "m"),
        {n: (0.0, 1.0) for n in NAMES},
        [0.5] * 4,
        [0.2] * 4,
        rec_dim=2,
        grid=GRID,
        channels=(4, 4),
        hidden=16,
    )
    recipe = {"simulator": "source", "n": 10, "seed": 11}
    path = save(gen, tmp_path / "tiny", {"data": recipe})
    assert main(["evaluate-prior", str(path), "--n", "100", "--seed", "11"]) == 2
    assert "training data seed" in capsys.readouterr().err
    assert main(["evaluate-prior", str(path), "--n", "100", "--seed", "12"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 100 and set(summary["explicitness"]) == set(NAMES)


class PCADecoder(PCAGenerator):
    """The PCA generator without its encoder (not an ``Encoder``)."""

    encode = None


def test_prior_without_encoder_is_refused(loaded, capsys):
    loaded(PCADecoder())
    assert main(["evaluate-prior", "gp", "--n", "50", "--seed", "5"]) == 2
    assert "has no `encode" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "0"], "--n must be a positive integer (held-out fields), got 0"),
        (["--seed", "-3"], "--seed must be a non-negative integer, got -3"),
    ],
)
def test_options_are_checked_before_loading(monkeypatch, capsys, extra, message):
    monkeypatch.setattr(priors, "load", lambda name: pytest.fail("loaded"), raising=False)
    assert main(["evaluate-prior", "tiny", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("invprior evaluate-prior: error: ") and message in err


def test_output_folder_is_checked_before_loading(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(priors, "load", lambda name: pytest.fail("loaded"), raising=False)
    (tmp_path / "file").write_text("")
    assert main(["evaluate-prior", "tiny", "--out", str(tmp_path / "file")]) == 2
    assert "--out" in (err := capsys.readouterr().err) and "is a file" in err
    assert main(["evaluate-prior", "tiny", "--out", str(tmp_path / "file" / "figs")]) == 2
    assert "is a file, so the folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_missing_checkpoint_names_the_path(tmp_path, capsys):
    missing = tmp_path / "none"
    assert main(["evaluate-prior", str(missing), "--n", "10"]) == 2
    err = capsys.readouterr().err
    assert f"cannot load prior {str(missing)!r}" in err and "not found" in err
