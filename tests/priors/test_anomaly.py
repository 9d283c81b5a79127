# SPDX-License-Identifier: MIT
"""Residual tail probabilities against chi-square values and injected outliers."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.stats import mannwhitneyu

from invprior.priors.anomaly import (
    detection_auc,
    plot_anomalies,
    rank_anomalies,
    reconstruction_error,
    residual_tail_probability,
)


def test_tail_probability_known_chi2_values():
    # r = 1: P(|N(0,1)| >= 1.959964) = 0.05; r = 2: P(chi2_2 >= x) = exp(-x / 2).
    np.testing.assert_allclose(residual_tail_probability(np.array([1.959964])), 0.05, rtol=1e-5)
    z = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(residual_tail_probability(z), np.exp(-np.array([0, 2, 25]) / 2))
    # r = 4 at the median of chi2_4 (3.356694)
    z4 = np.full((1, 4), np.sqrt(3.356694 / 4))
    np.testing.assert_allclose(residual_tail_probability(z4), 0.5, rtol=1e-5)


def test_ranking_finds_injected_outliers_even_past_underflow():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 6))
    outliers = np.array([17, 123, 250])
    z[outliers] *= np.array([6.0, 60.0, 8.0])[:, None]
    out = rank_anomalies(z, top=3)
    assert out["index"].tolist() == [123, 250, 17]
    assert out["tail_probability"][0] == 0.0  # underflows; the order comes from the norm
    assert (out["tail_probability"] < 1e-6).all()
    np.testing.assert_allclose(out["squared_norm"], np.sum(z[out["index"]] ** 2, axis=1))
    assert rank_anomalies(z, top=1000)["index"].size == 300


def test_plot_anomalies_draws_the_smallest_scores_first():
    fields = np.arange(5 * 4 * 3, dtype=float).reshape(5, 4, 3)
    scores = np.array([0.5, 1e-4, 0.9, 1e-3, 0.2])
    fig = plot_anomalies(fields, scores, top=3)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert [t.split("\n")[0] for t in titles] == ["#1", "#3", "#4"]
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), fields[1])


def test_reconstruction_error_is_the_relative_frobenius_norm():
    rng = np.random.default_rng(0)
    fields = rng.standard_normal((5, 3, 4))
    recon = fields + 0.1 * rng.standard_normal(fields.shape)
    expected = [
        np.sqrt(((x - r) ** 2).sum() / (x**2).sum()) for x, r in zip(fields, recon, strict=True)
    ]
    np.testing.assert_allclose(reconstruction_error(fields, recon), expected, rtol=1e-12)
    np.testing.assert_array_equal(reconstruction_error(fields, fields), np.zeros(5))
    np.testing.assert_allclose(reconstruction_error(fields, 3 * fields), np.full(5, 2.0))


def test_detection_auc_is_the_mann_whitney_statistic_with_ties_half():
    rng = np.random.default_rng(1)
    typical = rng.integers(0, 6, 40).astype(float)  # many ties
    anomalous = rng.integers(2, 9, 15).astype(float)
    u = mannwhitneyu(anomalous, typical).statistic
    assert detection_auc(anomalous, typical) == pytest.approx(u / (15 * 40), rel=1e-12)
    assert detection_auc(np.array([5.0, 6.0]), np.array([1.0, 2.0])) == 1.0
    assert detection_auc(np.array([1.0, 2.0]), np.array([5.0, 6.0])) == 0.0
    assert detection_auc(np.ones(3), np.ones(4)) == 0.5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: residual_tail_probability(np.full((3, 2), np.nan)), "NaN"),
        (lambda: residual_tail_probability(np.ones((3, 0))), "no columns"),
        (lambda: residual_tail_probability(np.ones((2, 2, 2))), "shape"),
        (lambda: rank_anomalies(np.ones((3, 2)), top=0), "top"),
        (lambda: plot_anomalies(np.ones((3, 4, 4)), np.ones(2)), "shape"),
        (lambda: plot_anomalies(np.ones((3, 4, 4)), np.full(3, np.nan)), "NaN"),
        (lambda: reconstruction_error(np.ones((3, 4, 4)), np.ones((3, 4, 5))), "shape"),
        (lambda: reconstruction_error(np.ones((4, 4)), np.ones((4, 4))), "shape"),
        (lambda: detection_auc(np.ones(0), np.ones(3)), "non-empty"),
        (lambda: detection_auc(np.ones((2, 2)), np.ones(3)), "vectors"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
