# SPDX-License-Identifier: MIT
"""Source fields outside the training distribution."""

import numpy as np
import pytest

from invprior.priors import GridSpec
from invprior.priors.simulate import (
    SHARP_WIDTH,
    SOURCE_PARAMETERS,
    simulate_misspecified_sources,
    simulate_sources,
)

GRID = GridSpec((16, 16))


def test_two_sources_are_equally_strong_and_wide():
    data = simulate_misspecified_sources(20, 3, GRID, "two_sources")
    assert data.fields.shape == (20, 16, 16) and data.recipe["simulator"] == "source_two_sources"
    np.testing.assert_array_equal(data.factors["secondary_ratio"], 1.0)
    np.testing.assert_array_equal(data.factors["secondary_width"], data.factors["width"])
    lo, hi = SOURCE_PARAMETERS["x0"][:2]
    assert ((lo <= data.factors["x2"]) & (data.factors["x2"] <= hi)).all()


def test_sharp_widths_lie_below_the_training_range():
    data = simulate_misspecified_sources(50, 3, GRID, "sharp")
    assert data.factors["width"].max() <= SHARP_WIDTH[1] < SOURCE_PARAMETERS["width"][0]
    assert data.factors["width"].min() >= SHARP_WIDTH[0]
    # Sharper sources of the same amplitude reach their peak on fewer nodes.
    train = simulate_sources(50, 3, GRID)
    assert (data.fields > 0.5 * data.fields.max((1, 2), keepdims=True)).sum() < (
        train.fields > 0.5 * train.fields.max((1, 2), keepdims=True)
    ).sum()


def test_seeded_and_checked():
    a = simulate_misspecified_sources(4, 1, GRID, "sharp")
    b = simulate_misspecified_sources(4, 1, GRID, "sharp")
    np.testing.assert_array_equal(a.fields, b.fields)
    with pytest.raises(ValueError, match="kind must be"):
        simulate_misspecified_sources(4, 1, GRID, "wide")
