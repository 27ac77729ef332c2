"""Risk bands tied to the base rate: cut points, the examples behind each band, persistence (worked by hand)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from defectops.errors import InputError
from defectops.training.models import LightGBMJIT, OnlineJIT, load_model
from defectops.training.risk import (
    BandSupport,
    RiskBand,
    RiskBands,
    multiple_text,
    relative_text,
    risk_bands_of,
)

# Ten out-of-fold scores and their truth: defects at 0.25, 0.45 and 0.9.
SCORES = [0.05, 0.1, 0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.5, 0.9]
TRUTH = [0, 0, 0, 0, 0, 1, 0, 1, 0, 1]


def test_the_cuts_are_once_and_twice_the_base_rate() -> None:
    bands = RiskBands.from_base_rate(0.2)
    assert (bands.medium, bands.high, bands.base_rate, bands.support) == (0.2, 0.4, 0.2, ())
    assert bands.band(0.19) is RiskBand.LOW
    assert bands.band(0.2) is RiskBand.MEDIUM
    assert bands.band(0.39) is RiskBand.MEDIUM
    assert bands.band(0.4) is RiskBand.HIGH
    assert bands.relative(0.3) == pytest.approx(1.5)
    assert multiple_text(bands.relative(0.3)) == "1.5x"
    assert relative_text(0.05, bands) == "0.2x the base rate of 20.0%"


def test_a_high_base_rate_caps_the_high_cut_at_one() -> None:
    assert RiskBands.from_base_rate(0.7).high == 1.0


def test_each_band_records_the_out_of_fold_examples_behind_it() -> None:
    # 3 scores are >= 0.4, enough for min_examples=2: the cuts stay at 0.2 and 0.4.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=2)
    assert (bands.medium, bands.high) == (0.2, 0.4)
    assert bands.support == (
        BandSupport(RiskBand.LOW, 4, 0),  # 0.05, 0.1, 0.1, 0.15
        BandSupport(RiskBand.MEDIUM, 3, 1),  # 0.2, 0.25 (defect), 0.3
        BandSupport(RiskBand.HIGH, 3, 2),  # 0.45 (defect), 0.5, 0.9 (defect)
    )
    assert bands.support[2].defect_rate == pytest.approx(2 / 3)


def test_a_thin_high_band_moves_its_cut_down_until_it_holds_enough_examples() -> None:
    # Only 3 scores reach 0.4; the 4th highest score is 0.3, so the high band starts there.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=4)
    assert (bands.medium, bands.high) == (0.2, 0.3)
    assert bands.support == (
        BandSupport(RiskBand.LOW, 4, 0),
        BandSupport(RiskBand.MEDIUM, 2, 1),  # 0.2, 0.25 (defect)
        BandSupport(RiskBand.HIGH, 4, 2),  # 0.3, 0.45 (defect), 0.5, 0.9 (defect)
    )


def test_the_high_cut_never_goes_below_the_base_rate() -> None:
    # The 8th highest score is 0.1: the cut stops at the base rate and the medium band is empty.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=8)
    assert (bands.medium, bands.high) == (0.2, 0.2)
    assert [s.examples for s in bands.support] == [4, 0, 6]


def test_bad_base_rates_and_mismatched_scores_are_refused() -> None:
    with pytest.raises(InputError, match="base rate"):
        RiskBands.from_base_rate(float("nan"))
    with pytest.raises(InputError, match="base rate"):
        RiskBands.from_base_rate(1.5)
    with pytest.raises(InputError, match="10 scores but 2 labels"):
        RiskBands.from_base_rate(0.2, SCORES, [0, 1])


def test_bands_round_trip_through_a_document() -> None:
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=4)
    assert RiskBands.from_dict(bands.as_dict()) == bands
    plain = RiskBands(medium=0.3, high=0.3)
    assert plain.as_dict()["base_rate"] is None
    assert math.isnan(RiskBands.from_dict(plain.as_dict()).base_rate)


def test_a_fitted_model_keeps_bands_backed_by_its_out_of_fold_scores(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    train = table.iloc[:450]
    model = LightGBMJIT(n_estimators=40).fit(train, train["label"])
    bands = model.risk_bands()
    assert bands.base_rate == pytest.approx(float(train["label"].mean()))
    assert bands.medium == pytest.approx(bands.base_rate)
    assert bands.base_rate <= bands.high <= min(2 * bands.base_rate, 1.0)
    assert [s.band for s in bands.support] == [RiskBand.LOW, RiskBand.MEDIUM, RiskBand.HIGH]
    assert bands.support[2].examples >= 20  # the high band is backed (the default minimum)
    assert load_model(model.save(tmp_path / "model")).risk_bands() == bands
    assert risk_bands_of(model) == bands


def test_an_online_model_follows_its_running_base_rate(table: pd.DataFrame) -> None:
    model = OnlineJIT().partial_fit(table.iloc[:200], table["label"].iloc[:200])
    rate = float(table["label"].iloc[:200].mean())
    assert model.risk_bands() == RiskBands.from_base_rate(rate)


def test_a_foreign_estimator_gets_two_bands_at_its_threshold() -> None:
    assert risk_bands_of(object(), threshold=0.3) == RiskBands(medium=0.3, high=0.3)
    assert risk_bands_of(object()) is None
