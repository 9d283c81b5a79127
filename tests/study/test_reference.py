# SPDX-License-Identifier: MIT
"""``invprior.study.reference``: learned against exact-prior posteriors over many truths."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from tiny_study import NAMES, study_toml, tiny_auxvae

from invprior.priors import GridSpec, save
from invprior.priors.checkpoint import digest
from invprior.priors.metrics import least_squares_projections, projection_errors
from invprior.priors.simulate import simulate, simulate_misspecified_sources
from invprior.study import SamplerConfig, StudyConfig, reference
from invprior.study.setup import synthetic_truth
from invprior.validation import InputError

pytestmark = pytest.mark.filterwarnings("ignore::invprior.diagnostics.SamplingWarning")

SOURCE_NAMES = ("x0", "y0", "amplitude", "width")  # the simulator's named factors


def tiny_config(prior, tmp_path):
    """A tiny source study with the approximation error and a 4-chain ChEES sampler."""
    path = tmp_path / "study.toml"
    text = study_toml(prior, baseline=False)
    path.write_text(text + "[approximation_error]\nenabled = true\nnum_fields = 30\n")
    study = StudyConfig.from_toml(path)
    mcmc = SamplerConfig(
        kernel="chees", num_chains=4, warmup_steps=10, num_samples=10, disable_progbar=True
    )
    return dataclasses.replace(study, mcmc=mcmc)


def test_in_distribution_truths_are_the_studys_truths(tiny_prior, tmp_path):
    config = tiny_config(tiny_prior, tmp_path)
    grid = GridSpec((16, 16))
    for index in (0, 2):
        field, named = reference.held_out_truth("in_distribution", index, 5, grid)
        study = dataclasses.replace(config, truth=dataclasses.replace(config.truth, index=index))
        generator = type("G", (), {"grid": grid, "aux_names": SOURCE_NAMES})()
        expected = synthetic_truth(study, generator)
        np.testing.assert_array_equal(field, expected["field"])
        assert named == {k: float(expected[k]) for k in SOURCE_NAMES}
    field, named = reference.held_out_truth("sharp", 1, 6, grid)
    sharp = simulate_misspecified_sources(2, 6, grid, "sharp")
    np.testing.assert_array_equal(field, sharp.fields[1])
    assert named["width"] == float(sharp.factors["width"][1])
    assert named["width"] < simulate("source", 1, 6, grid).ranges["width"][0]
    with pytest.raises(ValueError, match="family must be one of"):
        reference.held_out_truth("smooth", 0, 5, grid)


@pytest.mark.dolfinx
def test_two_truths_scored_kept_and_resumed(tiny_prior, tmp_path, monkeypatch):
    config = tiny_config(tiny_prior, tmp_path)
    out = tmp_path / "out"
    records = reference.reference_study(config, 2, out=out)
    assert [(r["family"], r["index"]) for r in records] == [
        ("in_distribution", 0),
        ("in_distribution", 1),
    ]
    for record in records:
        for which in reference.POSTERIORS:
            scores = record[which]
            # the tiny prior names two of the simulator's four factors
            assert tuple(scores["named"]) == (NAMES if which == "learned" else SOURCE_NAMES)
            assert 0 < scores["rel_l2_error"] and 0 <= scores["coverage_90"] <= 1
            assert scores["crps"] > 0 and math.isfinite(scores["named_rhat_max"])
            for name, row in scores["named"].items():
                lo, hi = row["hdi90"]
                assert lo <= row["mean"] <= hi
                assert row["hit"] == (lo <= record["truth"][name] <= hi)
        assert tuple(record["compare"]) == NAMES
        for name, pair in record["compare"].items():
            widths = [np.diff(record[w]["named"][name]["hdi90"])[0] for w in reference.POSTERIORS]
            assert pair["width_ratio"] == pytest.approx(widths[0] / widths[1])
            assert pair["w1"] >= 0
        ratio = record["learned"]["rel_l2_error"] / record["exact"]["rel_l2_error"]
        assert record["field_error_ratio"] == pytest.approx(ratio)
        sds = [record[w]["position_sd"] for w in reference.POSTERIORS]
        assert all(len(sd) == 2 and min(sd) > 0 for sd in sds)
        assert record["position_sd_ratio"] == pytest.approx(np.divide(*sds).tolist())
        # the tiny generator cannot represent the simulator's fields exactly
        assert 0.01 < record["projection_error"] < 10
    # the two truths differ, and so do their noise draws
    assert records[0]["truth"] != records[1]["truth"]
    assert sorted(p.name for p in (out / "truths").iterdir()) == [
        "in_distribution-000.json",
        "in_distribution-001.json",
    ]

    # a rerun reads the records back; only a new truth is computed
    computed = []
    original = reference.compare_posteriors

    def counting(config, setup, family, index, exact=None):
        computed.append(index)
        return original(config, setup, family, index, exact)

    monkeypatch.setattr(reference, "compare_posteriors", counting)
    again = reference.reference_study(config, 3, out=out)
    assert computed == [2] and again[:2] == records
    # a shard runs every n-th truth from the k-th
    assert [r["index"] for r in reference.reference_study(config, 3, out=out, shard=(1, 2))] == [1]
    assert computed == [2]
    assert len(list((out / "exact").iterdir())) == 3

    # another generator of the grid samples only its own posterior: the exact one is kept
    monkeypatch.setattr(reference, "compare_posteriors", original)
    torch.manual_seed(7)
    save(tiny_auxvae(), tmp_path / "other")
    other = tiny_config(tmp_path / "other", tmp_path)
    assert reference.exact_settings_of(other, GridSpec((16, 16))) == reference.exact_settings_of(
        config, GridSpec((16, 16))
    )
    sampled = []
    exact = reference.exact_posterior
    monkeypatch.setattr(
        reference, "exact_posterior", lambda *args: sampled.append(args[2:]) or exact(*args)
    )
    mine = reference.reference_study(other, 1, out=tmp_path / "other-study", exact=out / "exact")[
        0
    ]
    assert sampled == [] and mine["exact"] == records[0]["exact"]
    assert mine["learned"] != records[0]["learned"]
    assert not (tmp_path / "other-study" / "exact").exists()
    # each generator keeps its own records: the first study's are still read back
    monkeypatch.setattr(reference, "compare_posteriors", counting)
    assert reference.reference_study(config, 2, out=out) == records and computed == [2]
    monkeypatch.setattr(reference, "compare_posteriors", original)
    with pytest.raises(InputError, match="exact-prior posteriors needs an out folder"):
        reference.reference_study(other, 1, exact=out / "exact")
    fresh = reference.reference_study(other, 1)[0]  # nothing kept: the same numbers
    assert sampled == [("in_distribution", 0)]
    assert fresh["exact"]["named"] == mine["exact"]["named"]
    assert fresh["compare"] == mine["compare"]


def test_records_name_the_generator_they_were_computed_with(tiny_prior, tmp_path):
    # a generator retrained under the same path makes every kept truth stale
    copy = tmp_path / "prior"
    torch.manual_seed(0)
    save(tiny_auxvae(), copy)
    config = tiny_config(copy, tmp_path)
    before = reference.settings_of(config, ["in_distribution"])
    assert before["generator"] == digest(copy)
    torch.manual_seed(1)
    save(tiny_auxvae(), copy)
    assert reference.settings_of(config, ["in_distribution"])["generator"] != before["generator"]
    missing = dataclasses.replace(
        config, prior=dataclasses.replace(config.prior, name=str(tmp_path / "gone"))
    )
    with pytest.raises(InputError, match="prior\\] name = .*gone.*not found"):
        reference.settings_of(missing, ["in_distribution"])


def record(family, index, ratio, hits, errors):
    """A hand-made record: widths 1 (exact) and ``ratio`` (learned), given hits and errors."""

    def scores(width, hit, error):
        return {
            "named": {
                n: {"mean": 0.5, "sd": 1.0, "hdi90": [0.0, width], "hit": hit, "abs_error": 0.1}
                for n in ("a", "b")
            },
            "rel_l2_error": error,
            "coverage_90": 0.9,
            "crps": error / 10,
            "named_rhat_max": 1.0 + index / 100,
            "named_ess_min": 100.0 + index,
            "divergences": index % 2,
            "wall_s": 1.0,
        }

    return {
        "family": family,
        "index": index,
        "truth": {"a": 0.1, "b": 0.2},
        "learned": scores(ratio, hits[0], errors[0]),
        "exact": scores(1.0, hits[1], errors[1]),
        "compare": {n: {"width_ratio": ratio, "w1": 0.0, "w1_over_sd": ratio} for n in "ab"},
        "field_error_ratio": errors[0] / errors[1],
        "position_sd_ratio": [ratio, 2 * ratio],
        "projection_error": errors[1] * 0.75,
    }


def test_summary_medians_rates_and_ratios():
    rows = [
        record("in_distribution", 0, 1.0, (True, True), (0.2, 0.1)),
        record("in_distribution", 1, 3.0, (False, True), (0.3, 0.3)),
        record("in_distribution", 2, 2.0, (True, False), (0.1, 0.2)),
        record("sharp", 0, 5.0, (False, False), (0.4, 0.2)),
    ]
    table = reference.summarise(rows)
    assert list(table) == ["in_distribution", "sharp"]
    entry = table["in_distribution"]
    assert entry["truths"] == 3
    assert entry["named"]["a"]["width_ratio_median"] == 2.0
    assert entry["named"]["a"]["learned_hit_rate"] == pytest.approx(2 / 3)
    assert entry["named"]["b"]["exact_hit_rate"] == pytest.approx(2 / 3)
    assert entry["learned"]["rel_l2_error_median"] == pytest.approx(0.2)
    assert entry["field_error_ratio_median"] == pytest.approx(1.0)
    assert entry["field_error_ratio_of_means"] == pytest.approx(0.6 / 0.6)
    assert entry["learned"]["named_rhat_max"] == pytest.approx(1.02)
    assert entry["exact"]["named_ess_min"] == 100.0 and entry["exact"]["divergences"] == 1
    assert table["sharp"]["field_error_ratio_median"] == pytest.approx(2.0)
    assert entry["position_sd_ratio_median"] == [2.0, 4.0]
    assert entry["projection_error_median"] == pytest.approx(0.15)
    # a projection error 3/4 of the exact error: a 5/4 field-error ratio on every truth
    assert entry["representation_floor_median"] == pytest.approx(1.25)
    text = reference.markdown(table)
    assert "a field-error ratio of 1.25 (median)" in text and "median x 2.00, y 4.00" in text
    assert "**in_distribution** (3 truths)" in text and "| a | 2.00 | 0.67 | 0.67 |" in text
    # a link floor as wide as the exact interval: a perfect generator stays sqrt(2) wider
    with_floor = reference.summarise(rows, {"a": 1.0, "b": 0.0})["in_distribution"]["named"]
    assert with_floor["a"]["floor_ratio_median"] == pytest.approx(np.sqrt(2))
    assert with_floor["b"]["floor_ratio_median"] == 1.0
    text = reference.markdown(reference.summarise(rows, {"a": 1.0, "b": 0.0}))
    assert "floor of the link" in text and "| a | 2.00 | 1.41 | 0.67 | 0.67 |" in text
    assert reference.plot_reference(rows).axes[0].get_yscale() == "log"


def test_summary_keeps_an_undefined_convergence_figure_undefined():
    rows = [record("in_distribution", i, 1.0, (True, True), (0.2, 0.1)) for i in range(3)]
    # what a record read back from JSON holds for a chain that never moved
    rows[1]["learned"]["named_rhat_max"] = rows[1]["learned"]["named_ess_min"] = None
    entry = reference.summarise(rows)["in_distribution"]
    assert math.isnan(entry["learned"]["named_rhat_max"])
    assert math.isnan(entry["learned"]["named_ess_min"])
    assert entry["exact"]["named_rhat_max"] == pytest.approx(1.02)
    assert "| nan | nan |" in reference.markdown({"in_distribution": entry})


def test_summary_relates_the_learned_error_to_the_exact_and_the_projections():
    rows = [record("in_distribution", i, 1.0, (True, True), (0.2, 0.1)) for i in range(3)]
    named = reference.summarise(rows)["in_distribution"]["named"]["a"]
    assert "projection_abs_error" not in named  # no record has the projection's factors
    assert "exact_learned_error_rank_corr" not in named  # every error the same: undefined
    for row, offset in zip(rows, (-0.2, 0.1, 0.4), strict=True):
        row["learned"]["named"]["a"]["mean"] = 0.1 + offset  # the truth of a is 0.1
        row["exact"]["named"]["a"]["mean"] = 0.1 - offset
        row["learned"]["named"]["b"]["mean"] = 0.2 - offset
        row["projection_named"] = {"a": 0.1 + 2 * offset, "b": 0.25}  # b's is off by 0.05
    named = reference.summarise(rows)["in_distribution"]["named"]
    assert named["a"]["exact_learned_error_rank_corr"] == pytest.approx(-1.0)
    assert named["a"]["projection_abs_error"] == pytest.approx((0.4 + 0.2 + 0.8) / 3)
    assert named["a"]["projection_learned_error_rank_corr"] == pytest.approx(1.0)
    assert named["b"]["projection_abs_error"] == pytest.approx(0.05)
    assert "projection_learned_error_rank_corr" not in named["b"]  # constant: undefined
    text = reference.markdown(reference.summarise(rows))
    assert "rank corr. with the projection's" in text
    assert "| a | -1.00 | 0.4667 | 1.00 |" in text and "| b | - | 0.0500 | - |" in text
    rows[0]["learned"]["named"]["a"]["mean"] = 0.1 + 0.3  # learned errors 0.3, 0.1, 0.4
    corr = reference.summarise(rows)["in_distribution"]["named"]["a"]
    # ranks 1, 2, 3 against 2, 1, 3: a rank correlation of 1/2 (Pearson's: 0.33)
    assert corr["projection_learned_error_rank_corr"] == pytest.approx(0.5)
    del rows[1]["projection_named"]  # one truth without it: none reported
    named = reference.summarise(rows)["in_distribution"]["named"]["a"]
    assert "projection_abs_error" not in named and "exact_learned_error_rank_corr" in named
    assert "projection's" not in reference.markdown(reference.summarise(rows))


def test_source_centroid_finds_a_bump_and_refuses_nothing():
    grid = GridSpec((33, 65), ((0.0, 0.0), (2.0, 1.0)))
    y, x = np.meshgrid(np.linspace(0, 1, 33), np.linspace(0, 2, 65), indexing="ij")
    bump = np.exp(-((x - 1.5) ** 2 + (y - 0.25) ** 2) / (2 * 0.05**2))
    fields = np.stack([bump, bump - 0.5 * bump.max(), np.zeros_like(bump)])
    centroids = reference.source_centroid(fields, grid)
    assert centroids.shape == (3, 2)
    np.testing.assert_allclose(centroids[:2], [[1.5, 0.25]] * 2, atol=1e-6)
    assert np.isnan(centroids[2]).all()  # no positive value: no centroid


def test_projection_error_is_zero_on_the_range_and_not_off_it(tiny_prior):
    from invprior.priors import load

    generator = load(str(tiny_prior))
    torch.manual_seed(0)
    z = torch.randn(1, generator.aux_dim + generator.rec_dim)
    with torch.no_grad():
        decoded = generator.decode(z[:, : generator.aux_dim], z[:, generator.aux_dim :])
    on_range = decoded[0].double().numpy()
    assert projection_errors(generator, on_range[None])[0] < 1e-3
    noise = np.random.default_rng(0).standard_normal(on_range.shape)
    off_range = on_range + 0.3 * np.linalg.norm(on_range) / np.linalg.norm(noise) * noise
    assert 0.1 < projection_errors(generator, off_range[None])[0] < 0.3
    # the study's record of a truth: the same error, and the best fit's named block in units
    error, named = reference.truth_projection(generator, off_range)
    latents, errors = least_squares_projections(generator, off_range[None])
    assert error == errors[0] and list(named) == list(generator.aux_names)
    d = generator.aux_dim
    in_units = generator.aux_mean.double() + generator.aux_std.double() * latents[0, :d]
    np.testing.assert_allclose(list(named.values()), in_units.numpy(), rtol=1e-12)
    assert np.abs(latents[0, :d] - in_units.numpy()).max() > 1e-3  # units, not the latent


def test_link_floor_is_the_width_the_link_noise_leaves(tiny_prior):
    from invprior.model import DisentangledPrior
    from invprior.priors import load

    generator = load(str(tiny_prior))
    floor = reference.link_floor(DisentangledPrior(generator, tau=0.2))
    assert list(floor) == list(NAMES)
    for j, name in enumerate(NAMES):  # 2 * 1.645 * tau * s_j: a 90% Gaussian interval
        assert floor[name] == pytest.approx(2 * 1.6448536 * 0.2 * float(generator.aux_std[j]))


def test_bad_input_is_refused_before_any_work(tiny_prior, tmp_path):
    config = tiny_config(tiny_prior, tmp_path)
    with pytest.raises(InputError, match="unknown \\['smooth'\\]"):
        reference.reference_study(config, 2, families=("smooth",))
    with pytest.raises(InputError, match="num_truths >= 1"):
        reference.reference_study(config, 0)
    with pytest.raises(InputError, match="0 <= k < n"):
        reference.reference_study(config, 2, shard=(2, 2))
    conductivity = dataclasses.replace(
        config, pde=dataclasses.replace(config.pde, kind="conductivity")
    )
    with pytest.raises(InputError, match="kind = 'source'"):
        reference.reference_study(conductivity, 2)
