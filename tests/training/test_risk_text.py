"""Scores and band cuts as every surface shows them: never a contradiction between a score and a legend.

Observed: a score of 0.10476 read "0.105 minimal" right beside the legend "low from 0.105", the cut being
0.10484. The cut is shown rounded to nearest but never below itself (cut_text), and a score gets the fewest
decimals (3 at least) at which it sits on the same side of every shown cut as it does of the cut itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from defectops.training.risk import RISK_BANDS, RiskBand, RiskBands, cut_text, probability_text

# The observed model: base rate 0.20968, cuts at half, once and twice it.
OBSERVED = RiskBands(low=0.10484, medium=0.20968, high=0.41935, base_rate=0.20968)


def test_the_observed_score_no_longer_reads_as_the_cut_it_is_below() -> None:
    assert OBSERVED.band(0.10476) is RiskBand.MINIMAL
    assert "low from 0.105 (0.5x)" in OBSERVED.describe()
    assert probability_text(0.10476, OBSERVED) == "0.1048"  # below the shown 0.105, as its band says
    # a score just above the cut keeps its 3 decimals: "0.105 low" beside "low from 0.105" is right
    assert (probability_text(0.10490, OBSERVED), OBSERVED.band(0.10490)) == ("0.105", RiskBand.LOW)
    assert probability_text(0.10484, OBSERVED) == "0.105"  # a score at the cut is in the band from it
    assert probability_text(0.3, OBSERVED) == "0.300"  # far from every cut: 3 decimals


def test_a_cut_that_rounds_down_is_shown_with_one_more_decimal() -> None:
    # 0.41935 would read "0.419": a score of 0.4192, medium, would then show at or above the high cut
    assert cut_text(0.41935) == "0.4194"
    assert "high from 0.4194 (2x the base rate)" in OBSERVED.describe()
    assert probability_text(0.4192, OBSERVED) == "0.419"
    assert probability_text(0.41936, OBSERVED) == "0.4194"  # high, shown at the cut as seen
    assert OBSERVED.range_text(RiskBand.MEDIUM).startswith("probability from 0.210 to 0.4194")
    assert (cut_text(0.10484), cut_text(0.2), cut_text(0.0)) == ("0.105", "0.200", "0.000")


def test_no_score_contradicts_a_shown_cut_and_every_text_is_honest() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        low, medium, high = np.sort(rng.uniform(0.0, 1.0, 3))
        bands = RiskBands(low=float(low), medium=float(medium), high=float(high), base_rate=float(medium))
        cuts = (bands.low, bands.medium, bands.high)
        near = [c + d for c in cuts for d in (-6e-4, -4e-4, -1e-4, -1e-6, 0.0, 1e-6, 1e-4, 4e-4, 6e-4)]
        for score in [*rng.uniform(0.0, 1.0, 20), *near]:
            if not 0.0 <= score <= 1.0:
                continue
            text = probability_text(float(score), bands)
            shown = float(text)
            assert abs(shown - score) <= 0.5e-3 + 1e-12, (score, text)  # rounded to nearest, never further
            band = bands.band(float(score))
            for cut, name in zip(cuts, RISK_BANDS[1:], strict=True):
                seen = float(cut_text(cut))
                assert cut <= seen <= cut + 0.5e-3 + 1e-12
                at_or_above = RISK_BANDS.index(band) >= RISK_BANDS.index(name)
                assert (shown >= seen) == at_or_above, (score, text, cut, cut_text(cut), band)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_score_that_is_not_a_number_is_said_so(value: float) -> None:
    assert probability_text(value, OBSERVED) == str(value)
