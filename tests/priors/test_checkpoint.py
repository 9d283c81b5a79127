# SPDX-License-Identifier: MIT
import json

import pytest
import torch

from invprior.priors import AuxVAE, BetaVAE, GaussianFieldPrior, GridSpec, load, save

GRID = GridSpec((16, 16))


def _generators():
    aux = AuxVAE(
        ("x0", "y0"),
        ("m", "m"),
        {"x0": (0.2, 0.8), "y0": (0.2, 0.8)},
        [0.5, 0.5],
        [0.17, 0.17],
        rec_dim=3,
        grid=GRID,
        channels=(4, 8),
        hidden=16,
        tau=0.2,
        field_offset=0.1,
        field_scale=2.0,
    )
    beta = BetaVAE(3, grid=GRID, channels=(4, 8), hidden=16)
    gauss = GaussianFieldPrior.matern(GRID, 1.0, 0.3, rank=4)
    return [aux, beta, gauss]


@pytest.mark.parametrize("gen", _generators(), ids=lambda g: type(g).__name__)
def test_round_trip(tmp_path, gen):
    side = save(
        gen, tmp_path / "prior.safetensors", {"metrics": {"lds": 0.5}, "data": {"seed": 3}}
    )
    assert side == tmp_path / "prior.json"
    meta = json.loads(side.read_text())
    assert meta["architecture"] == type(gen).__name__ and meta["grid"]["shape"] == [16, 16]
    assert meta["metrics"] == {"lds": 0.5} and meta["data"] == {"seed": 3}
    back = load(tmp_path / "prior")
    assert type(back) is type(gen) and back.grid == gen.grid
    assert back.aux_names == gen.aux_names and back.aux_ranges == gen.aux_ranges
    assert not back.training and not any(p.requires_grad for p in back.parameters())
    assert back.metadata["metrics"] == {"lds": 0.5}
    gen.eval()
    za, zr = torch.randn(4, gen.aux_dim), torch.randn(4, gen.rec_dim)
    torch.testing.assert_close(back.decode(za, zr), gen.decode(za, zr), rtol=0, atol=0)
    # loading an already loaded generator keeps its metadata when saved again
    save(back, tmp_path / "again")
    assert load(tmp_path / "again.json").metadata["data"] == {"seed": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.json",
        "again.safetensors",
        "prior.json",
        "prior.safetensors",
    ]


def test_tampered_weights_are_refused(tmp_path):
    save(_generators()[0], tmp_path / "g")
    path = tmp_path / "g.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256.*corrupt or were altered"):
        load(tmp_path / "g")


def test_wrong_grid_in_sidecar_is_refused(tmp_path):
    save(_generators()[0], tmp_path / "g")
    side = tmp_path / "g.json"
    meta = json.loads(side.read_text())
    meta["config"]["grid"]["shape"] = [32, 32]
    meta["grid"]["shape"] = [32, 32]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"does not match the architecture.*grid \(32, 32\)"):
        load(tmp_path / "g")


def test_required_grid_is_checked(tmp_path):
    save(_generators()[1], tmp_path / "g")
    assert load(tmp_path / "g", grid=GRID).grid == GRID
    with pytest.raises(ValueError, match="trained on grid shape"):
        load(tmp_path / "g", grid=GridSpec((64, 64)))


def test_missing_and_unknown(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shipped generator"):
        load("no-such-prior")
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "nothing.json")
    save(_generators()[1], tmp_path / "g")
    meta = json.loads((tmp_path / "g.json").read_text())
    meta["architecture"] = "Pickle"
    (tmp_path / "g.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="architecture 'Pickle'"):
        load(tmp_path / "g")


def test_map_location_and_dtype(tmp_path, device):
    gen = _generators()[0]
    save(gen, tmp_path / "g")
    back = load(tmp_path / "g", map_location=device)
    assert back.field_scale.device.type == device.type
    assert back.aux_mean.device.type == device.type
