"""Risk bands tied to the base rate: cut points, the examples behind each band, persistence (worked by hand)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from defectops.errors import InputError
from defectops.training.models import LightGBMJIT, OnlineJIT, load_model
from defectops.training.risk import (
    RISK_BANDS,
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


def test_the_cuts_are_half_once_and_twice_the_base_rate() -> None:
    bands = RiskBands.from_base_rate(0.2)
    assert (bands.low, bands.medium, bands.high, bands.base_rate, bands.support) == (0.1, 0.2, 0.4, 0.2, ())
    assert bands.band(0.0) is RiskBand.MINIMAL
    assert bands.band(0.099) is RiskBand.MINIMAL
    assert bands.band(0.1) is RiskBand.LOW
    assert bands.band(0.19) is RiskBand.LOW
    assert bands.band(0.2) is RiskBand.MEDIUM
    assert bands.band(0.39) is RiskBand.MEDIUM
    assert bands.band(0.4) is RiskBand.HIGH
    assert bands.band(1.0) is RiskBand.HIGH
    assert bands.relative(0.3) == pytest.approx(1.5)
    assert multiple_text(bands.relative(0.3)) == "1.5x"
    assert relative_text(0.05, bands) == "0.2x the base rate of 20.0%"
    assert relative_text(0.004, bands) == "<0.1x the base rate of 20.0%"  # 0.02x: not a bare "0.0x"
    assert multiple_text(bands.relative(0.011)) == "<0.1x"  # 0.055x: cut down, not rounded up
    assert multiple_text(bands.relative(0.02)) == "0.1x"
    # 0.399 is 1.995x, still medium: it reads 1.9x, never "2.0x" beside a medium band; 0.4 is high at 2.0x
    assert (bands.band(0.399), multiple_text(bands.relative(0.399))) == (RiskBand.MEDIUM, "1.9x")
    assert (bands.band(0.4), multiple_text(bands.relative(0.4))) == (RiskBand.HIGH, "2.0x")
    assert multiple_text(bands.relative(0.2)) == "1.0x"  # the medium cut itself
    assert [bands.bounds(band) for band in RISK_BANDS] == [(0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.0)]


def test_every_band_reads_with_the_base_rate_beside_it() -> None:
    bands = RiskBands.from_base_rate(0.2)
    assert [bands.range_text(band) for band in RISK_BANDS] == [
        "probability below 0.100 (under 0.5x the base rate of 20.0%)",
        "probability from 0.100 to 0.200 (0.5x to 1x the base rate of 20.0%)",
        "probability from 0.200 to 0.400 (1x to 2x the base rate of 20.0%)",
        "probability at or above 0.400 (2x or more the base rate of 20.0%)",
    ]
    assert bands.describe() == (
        "base rate 20.0%; low from 0.100 (0.5x), medium from 0.200 (1x), high from 0.400 (2x the base rate)"
    )
    assert RiskBands(medium=0.3, high=0.3).range_text(RiskBand.HIGH) == (
        "probability at or above 0.300 (base rate unknown)"
    )


def test_a_high_base_rate_caps_the_high_cut_at_one() -> None:
    assert RiskBands.from_base_rate(0.7).high == 1.0
    assert RiskBands.from_base_rate(0.7).low == 0.35


def test_each_band_records_the_out_of_fold_examples_behind_it() -> None:
    # Every band holds at least one score at 0.1 / 0.2 / 0.4: the cuts stay where they are.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=1)
    assert (bands.low, bands.medium, bands.high) == (0.1, 0.2, 0.4)
    assert bands.support == (
        BandSupport(RiskBand.MINIMAL, 1, 0),  # 0.05
        BandSupport(RiskBand.LOW, 3, 0),  # 0.1, 0.1, 0.15
        BandSupport(RiskBand.MEDIUM, 3, 1),  # 0.2, 0.25 (defect), 0.3
        BandSupport(RiskBand.HIGH, 3, 2),  # 0.45 (defect), 0.5, 0.9 (defect)
    )
    assert bands.support[3].defect_rate == pytest.approx(2 / 3)
    assert math.isnan(BandSupport(RiskBand.LOW, 0, 0).defect_rate)


def test_a_thin_minimal_band_moves_its_cut_up_to_the_nearest_score_that_backs_it() -> None:
    # min_examples=2. Below 0.1 there is one score (0.05). A cut at 0.15 puts 0.05, 0.1, 0.1 in minimal but
    # leaves low only 0.15: no cut backs both (4 scores below the base rate, two of them tied at 0.1), so
    # minimal comes first, at the nearest score to 0.1 that gives it 2: 0.15. Medium and high hold 3 each.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=2)
    assert (bands.low, bands.medium, bands.high) == (0.15, 0.2, 0.4)
    assert [(s.examples, s.defects) for s in bands.support] == [(3, 0), (1, 0), (3, 1), (3, 2)]


def test_a_thin_high_band_moves_its_cut_down_until_it_holds_enough_examples() -> None:
    # min_examples=4. Only 3 scores reach 0.4; the 4th highest score is 0.3, so high starts there (6 scores
    # from the base rate up cannot back both high and medium). Below the base rate only 4 scores: minimal takes
    # them all (cut at the base rate), low is empty.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=4)
    assert (bands.low, bands.medium, bands.high) == (0.2, 0.2, 0.3)
    assert bands.support == (
        BandSupport(RiskBand.MINIMAL, 4, 0),  # 0.05, 0.1, 0.1, 0.15
        BandSupport(RiskBand.LOW, 0, 0),
        BandSupport(RiskBand.MEDIUM, 2, 1),  # 0.2, 0.25 (defect)
        BandSupport(RiskBand.HIGH, 4, 2),  # 0.3, 0.45 (defect), 0.5, 0.9 (defect)
    )


def test_thin_inner_bands_move_the_outer_cuts_away_from_the_base_rate() -> None:
    # Base rate 0.2, cuts 0.1 / 0.2 / 0.4, min_examples=2.
    # Below 0.2: 0.02 0.04 0.06 0.08 | 0.12 -> low holds only 0.12. Cuts backing both: 0.06 (minimal 2, low 3)
    # and 0.08 (minimal 3, low 2); the nearest to 0.1 is 0.08.
    # From 0.2: 0.2 | 0.4 0.45 0.5 0.6 -> medium holds only 0.2. Cuts backing both: 0.45 (medium 2, high 3)
    # and 0.5 (medium 3, high 2); the nearest to 0.4 is 0.45.
    scores = [0.02, 0.04, 0.06, 0.08, 0.12, 0.2, 0.4, 0.45, 0.5, 0.6]
    truth = [0, 0, 0, 0, 1, 0, 0, 1, 1, 1]
    bands = RiskBands.from_base_rate(0.2, scores, truth, min_examples=2)
    assert (bands.low, bands.medium, bands.high) == (0.08, 0.2, 0.45)
    assert [(s.examples, s.defects) for s in bands.support] == [(3, 0), (2, 1), (2, 0), (3, 3)]
    # With the default minimum (20) ten scores are too few to move anything.
    assert [s.examples for s in RiskBands.from_base_rate(0.2, scores, truth).support] == [4, 1, 1, 4]


def test_the_outer_cuts_never_cross_the_base_rate() -> None:
    # min_examples=8: 6 scores from the base rate up, 4 below it. High and minimal take each side whole.
    bands = RiskBands.from_base_rate(0.2, SCORES, TRUTH, min_examples=8)
    assert (bands.low, bands.medium, bands.high) == (0.2, 0.2, 0.2)
    assert [s.examples for s in bands.support] == [4, 0, 0, 6]


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


# The bands of a model saved with three bands (low / medium / high), as the registry holds them.
THREE_BANDS = {
    "medium": 0.2,
    "high": 0.35,
    "base_rate": 0.2,
    "support": [
        {"band": "low", "examples": 70, "defects": 6},
        {"band": "medium", "examples": 20, "defects": 5},
        {"band": "high", "examples": 20, "defects": 9},
    ],
}


def test_three_band_metadata_gets_its_low_cut_at_half_the_base_rate() -> None:
    bands = RiskBands.from_dict(THREE_BANDS)
    assert (bands.low, bands.medium, bands.high, bands.base_rate) == (0.1, 0.2, 0.35, 0.2)
    assert bands.low_derived
    # The old "low" counted everything below the base rate, two bands now: it is left out, not misread.
    assert bands.support == (BandSupport(RiskBand.MEDIUM, 20, 5), BandSupport(RiskBand.HIGH, 20, 9))
    assert (bands.band(0.05), bands.band(0.15), bands.band(0.3), bands.band(0.4)) == (
        RiskBand.MINIMAL,
        RiskBand.LOW,
        RiskBand.MEDIUM,
        RiskBand.HIGH,
    )
    assert "low from 0.100 (0.5x) (derived: a model saved with three bands)" in bands.describe()
    assert RiskBands.from_dict(bands.as_dict()) == bands  # stays marked once saved again
    # Without a base rate (bands cut at a threshold) nothing is minimal.
    old_plain = RiskBands.from_dict({"medium": 0.3, "high": 0.3, "base_rate": None, "support": []})
    assert (old_plain.low, old_plain.band(0.0)) == (0.0, RiskBand.LOW)


def test_a_fitted_model_keeps_bands_backed_by_its_out_of_fold_scores(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    train = table.iloc[:450]
    model = LightGBMJIT(n_estimators=40).fit(train, train["label"])
    bands = model.risk_bands()
    assert bands.base_rate == pytest.approx(float(train["label"].mean()))
    assert bands.medium == pytest.approx(bands.base_rate)
    assert bands.low <= bands.medium
    assert bands.medium <= bands.high
    assert [s.band for s in bands.support] == list(RISK_BANDS)
    assert sum(s.examples for s in bands.support) > 0
    # Every band is backed (the default minimum, 20). A base rate near 0.46 puts twice it above almost every
    # score, so the high cut moved down to hold 20; the low cut stayed at half the base rate.
    assert min(s.examples for s in bands.support) >= 20
    assert bands.high < 2 * bands.base_rate
    assert bands.low == pytest.approx(bands.base_rate / 2)
    assert not bands.low_derived
    assert load_model(model.save(tmp_path / "model")).risk_bands() == bands
    assert risk_bands_of(model) == bands


def test_an_online_model_follows_its_running_base_rate(table: pd.DataFrame) -> None:
    model = OnlineJIT().partial_fit(table.iloc[:200], table["label"].iloc[:200])
    rate = float(table["label"].iloc[:200].mean())
    assert model.risk_bands() == RiskBands.from_base_rate(rate)


def test_a_foreign_estimator_gets_two_bands_at_its_threshold() -> None:
    assert risk_bands_of(object(), threshold=0.3) == RiskBands(medium=0.3, high=0.3)
    assert risk_bands_of(object()) is None
