# SPDX-License-Identifier: MIT
import hashlib
import json
import math

import pytest
import torch
from generators import BUILDERS, GRID, LIBRARY
from safetensors.torch import save as serialise

from invprior.priors import AuxVAE, BetaVAE, DLCFMGenerator, GridSpec, checkpoint, load, save
from invprior.priors.checkpoint import CheckpointNotFoundError, sign
from invprior.validation import InputError


def _auxvae(**overrides):
    """The Aux-VAE of ``generators.BUILDERS`` (tau 0.2, names x0 and y0, std 0.17)."""
    return BUILDERS[AuxVAE](**overrides)


def _saved(tmp_path, gen=None):
    """A saved Aux-VAE (or ``gen``): the stem and the sidecar's content."""
    save(_auxvae() if gen is None else gen, tmp_path / "g")
    return tmp_path / "g", json.loads((tmp_path / "g.json").read_text())


def _resign(stem, meta):
    """Write ``meta`` as the sidecar with a valid digest, as another writer might."""
    stem.with_suffix(".json").write_text(checkpoint._signed_text(meta))


def _set_weights(stem, meta, tensors):
    """Replace the weights and record their hash in a re-signed sidecar."""
    raw = serialise(tensors)
    stem.with_suffix(".safetensors").write_bytes(raw)
    _resign(stem, {**meta, "sha256": hashlib.sha256(raw).hexdigest()})


@pytest.mark.parametrize("cls", LIBRARY, ids=lambda c: c.__name__)
def test_round_trip(tmp_path, cls):
    gen = BUILDERS[cls]()
    side = save(
        gen, tmp_path / "prior.safetensors", {"metrics": {"lds": 0.5}, "data": {"seed": 3}}
    )
    assert side == tmp_path / "prior.json"
    meta = json.loads(side.read_text())
    assert meta["architecture"] == type(gen).__name__ and meta["grid"]["shape"] == list(GRID.shape)
    assert meta["metrics"] == {"lds": 0.5} and meta["data"] == {"seed": 3}
    assert meta["format_version"] == 2 and list(meta)[-1] == "sidecar_sha256"
    assert sorted(meta["config"]) == sorted(checkpoint._CONFIG_KEYS[type(gen).__name__])
    back = load(tmp_path / "prior")
    assert type(back) is type(gen) and back.grid == gen.grid
    assert back.aux_names == gen.aux_names and back.aux_ranges == gen.aux_ranges
    assert back.config() == gen.config()
    assert not back.training and not any(p.requires_grad for p in back.parameters())
    assert back.metadata["metrics"] == {"lds": 0.5}
    # identical decodes after the round trip: tests/priors/test_generator_interface.py
    # loading an already loaded generator keeps its metadata when saved again
    save(back, tmp_path / "again")
    assert load(tmp_path / "again.json").metadata["data"] == {"seed": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.json",
        "again.safetensors",
        "prior.json",
        "prior.safetensors",
    ]


def test_digest_covers_the_parsed_content_not_the_layout(tmp_path):
    stem, meta = _saved(tmp_path)
    content = {k: v for k, v in meta.items() if k != "sidecar_sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert meta["sidecar_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    # re-indented and reordered: same content, still loads
    stem.with_suffix(".json").write_text(json.dumps(dict(reversed(meta.items()))))
    assert load(stem).tau == 0.2


def _edit_names(meta):
    meta["config"]["aux_names"] = ["y0", "x0"]
    meta["aux_names"] = ["y0", "x0"]


def _edit_ranges(meta):
    meta["config"]["aux_ranges"]["x0"] = [0.0, 1.0]
    meta["ranges"]["x0"] = [0.0, 1.0]


def _edit_bbox(meta):
    meta["config"]["grid"]["bbox"] = [[0.0, 0.0], [2.0, 2.0]]
    meta["grid"]["bbox"] = [[0.0, 0.0], [2.0, 2.0]]


def _edit_tau(meta):
    meta["config"]["tau"] = 0.05


def _edit_units(meta):
    meta["config"]["aux_units"] = ["km", "km"]
    meta["units"] = {"x0": "km", "y0": "km"}


def _edit_normalisation(meta):
    meta["config"]["aux_std"] = [0.3, 0.3]
    meta["normalisation"]["aux_std"] = [0.3, 0.3]


def _edit_metrics(meta):
    meta["metrics"] = {"lds": 0.99}


def _drop_key(meta):
    del meta["config"]["tau"]


def _add_key(meta):
    meta["config"]["dropout"] = 0.1


def _edit_weights_hash(meta):
    meta["sha256"] = "0" * 64


EDITS = [
    _edit_names,
    _edit_ranges,
    _edit_bbox,
    _edit_tau,
    _edit_units,
    _edit_normalisation,
    _edit_metrics,
    _drop_key,
    _add_key,
    _edit_weights_hash,
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_edited_sidecar_is_refused_before_anything_is_built(tmp_path, monkeypatch, edit):
    stem, meta = _saved(tmp_path)
    edit(meta)
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))

    def never(*args, **kwargs):
        raise AssertionError("built or read weights from an unchecked sidecar")

    monkeypatch.setattr(AuxVAE, "from_config", never)
    monkeypatch.setattr(checkpoint, "load_file", never)
    with pytest.raises(InputError) as err:
        load(stem)
    message = str(err.value)
    assert message.startswith(f"{stem}.json was changed after it was written")
    assert "sidecar_sha256" in message and "restore the original file" in message
    assert "reorder" not in message


def test_every_shipped_sidecar_is_signed():
    for name in checkpoint.pretrained_names():
        stem = checkpoint._resolve(name)
        meta = json.loads(stem.with_suffix(".json").read_text())
        assert meta["format_version"] == 2, name
        assert meta["sidecar_sha256"] == checkpoint._sidecar_digest(meta), name
        assert meta["sha256"] == checkpoint._sha256(stem.with_suffix(".safetensors")), name


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m["config"].pop("tau"), "['config.tau']"),
        (lambda m: m["config"]["grid"].pop("bbox"), "['config.grid.bbox']"),
        (lambda m: m["grid"].pop("shape"), "['grid.shape']"),
    ],
    ids=["tau", "config-bbox", "grid-shape"],
)
def test_missing_config_key_is_an_error_not_a_default(tmp_path, edit, key):
    stem, meta = _saved(tmp_path)
    edit(meta)
    _resign(stem, meta)
    with pytest.raises(InputError, match="no default is assumed") as err:
        load(stem)
    assert str(err.value).startswith(f"{stem}.json: ") and f"lacks the key(s) {key}" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m["config"].update(dropout=0.1), "['config.dropout']"),
        (lambda m: m["config"]["grid"].update(origin=[0, 0]), "['config.grid.origin']"),
    ],
    ids=["config", "config-grid"],
)
def test_unknown_config_key_is_an_error(tmp_path, edit, key):
    stem, meta = _saved(tmp_path)
    edit(meta)
    _resign(stem, meta)
    with pytest.raises(InputError, match="unknown key") as err:
        load(stem)
    assert str(err.value).startswith(f"{stem}.json: ") and key in str(err.value)


def test_unknown_key_in_a_flows_base_is_an_error(tmp_path):
    stem, meta = _saved(tmp_path, BUILDERS[DLCFMGenerator]())
    meta["config"]["base"]["beta"] = 1.0
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"unknown key\(s\) \['config.base.beta'\]"):
        load(stem)


def test_missing_top_level_key_is_an_error(tmp_path):
    stem, meta = _saved(tmp_path)
    del meta["ranges"]
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"g.json lacks the key\(s\) \['ranges'\]"):
        load(stem)


def test_sidecar_that_contradicts_itself_is_refused(tmp_path):
    stem, meta = _saved(tmp_path)
    meta["ranges"]["x0"] = [0.0, 1.0]  # the config, which builds the network, says 0.2-0.8
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"g.json: ranges records .* the sidecar contradicts"):
        load(stem)


def test_config_of_the_wrong_type_is_refused(tmp_path):
    stem, meta = _saved(tmp_path)
    meta["config"]["rec_dim"] = 3.0
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"g.json: config does not build a AuxVAE"):
        load(stem)
    stem, meta = _saved(tmp_path, BUILDERS[DLCFMGenerator]())
    meta["config"]["steps"] = 2.0  # built as 2 steps: the recorded config is not the network's
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"g.json: config records .*'steps': 2.0"):
        load(stem)


def test_save_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    gen = _auxvae()
    with torch.no_grad():
        gen.decoder_fc[0].weight[0, 0] = float("nan")
        gen.field_scale.fill_(float("inf"))
    with pytest.raises(InputError, match="nothing was written") as err:
        save(gen, tmp_path / "out" / "g")
    assert "decoder_fc.0.weight, field_scale hold NaN or Inf" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_non_finite_weights(tmp_path):
    stem, meta = _saved(tmp_path)
    tensors = dict(_auxvae().state_dict())
    tensors["decoder_fc.0.bias"] = torch.full_like(tensors["decoder_fc.0.bias"], float("-inf"))
    _set_weights(stem, meta, tensors)
    with pytest.raises(InputError, match="decoder_fc.0.bias hold NaN or Inf") as err:
        load(stem)
    assert str(err.value).startswith(f"{stem}.safetensors: ")


def test_tampered_weights_are_refused(tmp_path):
    stem, _ = _saved(tmp_path)
    path = tmp_path / "g.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=f"^{path} has SHA-256 .*corrupt or were altered"):
        load(stem)


def test_truncated_weights_are_refused(tmp_path):
    stem, _ = _saved(tmp_path)
    path = tmp_path / "g.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=f"^{path} has SHA-256 .*corrupt or were altered"):
        load(stem)


def test_unreadable_weights_with_a_matching_hash_are_refused(tmp_path):
    stem, meta = _saved(tmp_path)
    raw = b"not a safetensors file"
    (tmp_path / "g.safetensors").write_bytes(raw)
    _resign(stem, {**meta, "sha256": hashlib.sha256(raw).hexdigest()})
    with pytest.raises(InputError, match=f"^{stem}.safetensors is not a readable safetensors"):
        load(stem)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"format_version": 2, ', "is not a readable JSON file"),
        ("[1, 2]", "must hold a JSON object, got list"),
        ('{"format_version": 3}', "has format_version 3; this version of invprior reads 2"),
        ('{"format_version": true}', "has format_version True; this version"),
    ],
    ids=["truncated", "array", "future", "bool"],
)
def test_malformed_sidecar_is_refused(tmp_path, text, expected):
    stem, _ = _saved(tmp_path)
    stem.with_suffix(".json").write_text(text)
    with pytest.raises(InputError, match=expected) as err:
        load(stem)
    assert str(err.value).startswith(f"{stem}.json ")


def test_wrong_grid_in_resigned_sidecar_is_refused(tmp_path):
    stem, meta = _saved(tmp_path)
    meta["config"]["grid"]["shape"] = [32, 32]
    meta["grid"]["shape"] = [32, 32]
    _resign(stem, meta)
    with pytest.raises(InputError, match=r"does not match the architecture.*grid \(32, 32\)"):
        load(stem)


def test_format_1_is_refused_and_sign_converts_it(tmp_path):
    stem, meta = _saved(tmp_path)
    old = {k: v for k, v in meta.items() if k != "sidecar_sha256"} | {"format_version": 1}
    stem.with_suffix(".json").write_text(json.dumps(old, indent=2))
    with pytest.raises(InputError, match="checkpoint format 1.*from invprior.priors.checkpoint"):
        load(stem)
    assert sign(stem) == stem.with_suffix(".json")
    assert json.loads(stem.with_suffix(".json").read_text()) == meta
    assert load(stem).tau == 0.2


def test_sign_accepts_a_deliberate_edit(tmp_path):
    stem, meta = _saved(tmp_path)
    meta["metrics"] = {"note": "checked by hand"}
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    with pytest.raises(InputError, match="changed after it was written"):
        load(stem)
    sign(stem)
    assert load(stem).metadata["metrics"] == {"note": "checked by hand"}


@pytest.mark.parametrize("target", ["sidecar", "weights"])
def test_sign_refuses_a_broken_checkpoint_and_writes_nothing(tmp_path, target):
    stem, meta = _saved(tmp_path)
    if target == "sidecar":
        meta["config"]["dropout"] = 0.1
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        expected = r"unknown key\(s\) \['config.dropout'\]"
    else:
        path = stem.with_suffix(".safetensors")
        path.write_bytes(path.read_bytes()[:-1])
        expected = "corrupt or were altered"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(InputError, match=expected):
        sign(stem)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_required_grid_is_checked(tmp_path):
    save(BUILDERS[BetaVAE](), tmp_path / "g")
    assert load(tmp_path / "g", grid=GRID).grid == GRID
    with pytest.raises(InputError, match="trained on grid shape"):
        load(tmp_path / "g", grid=GridSpec((64, 64)))


def test_missing_and_unknown(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no shipped generator") as err:
        load("no-such-prior")
    assert isinstance(err.value, InputError) and isinstance(err.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match="not found"):
        load(tmp_path / "nothing.json")
    stem, meta = _saved(tmp_path, BUILDERS[BetaVAE]())
    meta["architecture"] = "Pickle"
    _resign(stem, meta)
    with pytest.raises(InputError, match="architecture 'Pickle'"):
        load(stem)


def test_map_location_and_dtype(tmp_path, device):
    gen = _auxvae()
    save(gen, tmp_path / "g")
    back = load(tmp_path / "g", map_location=device)
    assert back.field_scale.device.type == device.type
    assert back.aux_mean.device.type == device.type


def test_float64_checkpoint_loads(tmp_path):
    std = torch.tensor([0.17, 0.17], dtype=torch.float64)
    gen = _auxvae(aux_std=std).to(torch.float64)
    stem, meta = _saved(tmp_path, gen)
    assert meta["dtype"] == "float64" and meta["normalisation"]["aux_std"] == [0.17, 0.17]
    back = load(stem)
    torch.testing.assert_close(back.aux_std, torch.tensor([0.17, 0.17]))


def test_metadata_is_checked_before_anything_is_written(tmp_path):
    gen = BUILDERS[BetaVAE]()
    with pytest.raises(TypeError, match="not JSON serializable"):
        save(gen, tmp_path / "out" / "g", {"data": {"grid": GRID}})
    assert list(tmp_path.iterdir()) == []
    # a metric that is NaN is recorded as such and keeps the digest valid
    save(gen, tmp_path / "g", {"metrics": {"lds": float("nan")}})
    assert math.isnan(load(tmp_path / "g").metadata["metrics"]["lds"])
    assert "NaN" in (tmp_path / "g.json").read_text()


def test_digest_names_the_checkpoint_without_loading_it(tmp_path):
    stem, meta = _saved(tmp_path)
    assert checkpoint.digest(stem) == meta["sidecar_sha256"]
    assert checkpoint.digest(f"{stem}.json") == meta["sidecar_sha256"]
    shipped = json.loads((checkpoint._resolve("source-auxvae").with_suffix(".json")).read_text())
    assert checkpoint.digest("source-auxvae") == shipped["sidecar_sha256"]
    save(_auxvae(tau=0.3), tmp_path / "g")  # another generator under the same name
    assert checkpoint.digest(stem) != meta["sidecar_sha256"]
    with pytest.raises(CheckpointNotFoundError, match="no shipped generator named 'nope'"):
        checkpoint.digest("nope")
    (tmp_path / "g.json").write_text("[]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        checkpoint.digest(stem)
