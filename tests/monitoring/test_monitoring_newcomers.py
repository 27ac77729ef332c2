"""The newcomer check (a new team of authors): hand-worked two-proportion tests, each condition of the
signal, persistence, the alarm setting, and what monitor_window, the HTML report and the gauges show."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from defectops.config import MonitoringSettings
from defectops.data import FEATURES
from defectops.monitoring import monitor_window, newcomer_status
from defectops.monitoring.newcomers import newcomer_shift, newcomer_verdict, two_proportion_test
from defectops.monitoring.report import prometheus_gauges, render_html

NOW = datetime(2026, 12, 5, tzinfo=UTC)
DEFAULTS = MonitoringSettings()
ALARMING = MonitoringSettings(newcomer_alarm=True)


def _exp(n: int, newcomers: int) -> pd.DataFrame:
    """``n`` changes of which the first ``newcomers`` by authors with exp 9 (< 10), the rest exp 10."""
    return pd.DataFrame({"exp": [9.0] * newcomers + [10.0] * (n - newcomers)})


def test_two_proportion_test_by_hand() -> None:
    # reference 20 of 200 (10%), window 30 of 100 (30%): pooled 50/300 = 1/6,
    # se = sqrt(1/6 * 5/6 * (1/200 + 1/100)) = sqrt(0.0020833) = 0.045644, z = 0.20 / 0.045644 = 4.3818
    z, p = two_proportion_test(20, 200, 30, 100) or (math.nan, math.nan)
    assert z == pytest.approx(4.3818, abs=1e-4)
    assert p == pytest.approx(0.5 * math.erfc(4.3818 / math.sqrt(2)), rel=1e-3)  # 5.9e-6
    assert p == pytest.approx(5.89e-6, rel=1e-2)
    # one-sided: a smaller share in the window gives p above 0.5 (z = -4.38)
    z_down, p_down = two_proportion_test(30, 100, 20, 200) or (math.nan, math.nan)
    assert z_down == pytest.approx(-4.3818, abs=1e-4)
    assert p_down == pytest.approx(1 - 5.89e-6, abs=1e-6)
    # equal shares: z 0, p 0.5
    assert two_proportion_test(10, 100, 20, 200) == (0.0, 0.5)
    # undefined: a pooled share of 0 or 1, or an empty side
    assert two_proportion_test(0, 100, 0, 100) is None
    assert two_proportion_test(100, 100, 50, 50) is None
    assert two_proportion_test(0, 0, 3, 10) is None


def test_a_doubled_share_ten_points_up_and_significant_is_a_signal_sustained_over_two_checks() -> None:
    reference, window = _exp(200, 20), _exp(100, 30)  # 10% -> 30%: x3, +20 points, p 5.9e-6
    first = newcomer_shift(reference, window, settings=DEFAULTS)
    assert first is not None
    assert (first.newcomers_reference, first.n_reference, first.newcomers_window, first.n_window) == (
        20,
        200,
        30,
        100,
    )
    assert first.share_reference == pytest.approx(0.1)
    assert first.share_window == pytest.approx(0.3)
    assert first.signal
    assert first.checks == 1
    assert not first.sustained
    assert first.describe() == (
        "30% of the window's changes (30 of 100) by newcomers (exp < 10) vs 10% of the reference's "
        "(20 of 200); two-proportion z = 4.38, p = 5.89e-06"
    )
    reasons, notes = newcomer_verdict(first, ALARMING)
    assert reasons == []
    assert notes[0].endswith(": in 1 check(s) in a row, 2 needed")
    second = newcomer_shift(reference, window, settings=DEFAULTS, history=[False, True])
    assert second is not None
    assert second.checks == 2
    assert second.sustained
    assert second.alarms is False  # the default: diagnosis
    reasons, notes = newcomer_verdict(second, DEFAULTS)
    assert reasons == []
    assert notes[0].endswith("(in 2 consecutive checks): diagnosis, newcomer_alarm is off")
    on = newcomer_shift(reference, window, settings=ALARMING, history=[True, True])
    assert on is not None
    assert on.checks == 3
    assert on.alarms
    reasons, _ = newcomer_verdict(on, ALARMING)
    assert reasons == [f"a new team? {on.describe()} (in 3 consecutive checks)"]
    assert newcomer_status(on, 2).endswith(": new team: in 3 consecutive checks, an alarm")


@pytest.mark.parametrize(
    ("reference", "window", "why"),
    [
        # 30% -> 45%: +15 points and significant (z = 2.57, p = 0.005) but only 1.5 times the share
        ((200, 60), (100, 45), "ratio"),
        # 2% -> 8%: 4 times and significant (z = 3.63) but only 6 points up
        ((1000, 20), (100, 8), "increase"),
        # 1 of 30 (3.3%) -> 14%: 4.2 times, +10.7 points, but pooled 15/130, se 0.0665, z = 1.60, p = 0.054
        ((30, 1), (100, 14), "significance"),
    ],
)
def test_each_condition_is_needed(reference: tuple[int, int], window: tuple[int, int], why: str) -> None:
    shift = newcomer_shift(_exp(*reference), _exp(*window), settings=DEFAULTS)
    assert shift is not None
    assert shift.p_value is not None
    assert not shift.signal
    assert shift.checks == 0
    if why == "significance":
        assert shift.z == pytest.approx(1.6039, abs=1e-3)
        assert shift.p_value > DEFAULTS.alpha
    else:
        assert shift.p_value < DEFAULTS.alpha
    assert newcomer_verdict(shift, ALARMING) == ([], [])


def test_minimum_sample_sizes_boundary_and_missing_experience() -> None:
    small = newcomer_shift(_exp(200, 20), _exp(99, 60), settings=DEFAULTS)  # 99 < 100 rows
    assert small is not None
    assert not small.signal
    assert small.skipped_reason == "not judged: 99 window rows with a known exp (< 100)"
    few = newcomer_shift(_exp(29, 0), _exp(100, 60), settings=DEFAULTS)  # 29 < min_samples (30)
    assert few is not None
    assert few.skipped_reason == "not judged: 29 reference rows with a known exp (< 30)"
    # exp 9 is a newcomer, 10 is not; missing values count on neither side
    window = pd.DataFrame({"exp": [0.0, 9.0, 9.99, 10.0, 250.0, np.nan]})
    shift = newcomer_shift(_exp(40, 4), window, settings=MonitoringSettings(min_alarm_predictions=1))
    assert shift is not None
    assert (shift.n_window, shift.newcomers_window) == (5, 3)
    assert newcomer_shift(pd.DataFrame({"la": [1.0]}), window, settings=DEFAULTS) is None


def _changes(rng: np.random.Generator, rows: int, newcomer_share: float) -> pd.DataFrame:
    frame = pd.DataFrame({name: rng.gamma(2.0, 10.0, rows).round(0) for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, rows).astype(float)
    frame["exp"] = np.where(rng.random(rows) < newcomer_share, rng.integers(0, 10, rows), 40 + frame["exp"])
    frame["score"] = rng.beta(2, 8, rows)
    return frame


def test_monitor_window_shows_a_new_team_as_diagnosis_and_alarms_only_when_asked() -> None:
    rng = np.random.default_rng(12)
    reference = _changes(rng, 2000, 0.05)
    window = _changes(rng, 300, 0.40)  # a new team: 40% of the changes by newcomers
    first = monitor_window(reference, window, now=NOW)
    assert first.newcomers is not None
    assert first.newcomers.signal
    assert first.newcomers.checks == 1
    assert first.state == "drift"
    assert any(r.startswith("newcomers: ") for r in first.reasons)
    assert not first.alarm
    second = monitor_window(reference, window, now=NOW, newcomer_history=[True])
    assert second.newcomers is not None
    assert second.newcomers.sustained
    assert not second.alarm  # newcomer_alarm off by default: diagnosis
    assert any("diagnosis, newcomer_alarm is off" in note for note in second.notes)
    alarmed = monitor_window(reference, window, now=NOW, newcomer_history=[True], settings=ALARMING)
    assert alarmed.alarm
    assert [r for r in alarmed.alarm_reasons if r.startswith("a new team? ")]
    page = render_html(alarmed)
    assert "<h2>New team of authors</h2>" in page
    assert "an alarm" in page
    gauges = {(g.name, tuple(g.labels.values())): g.value for g in prometheus_gauges(alarmed)}
    assert gauges[("defectops_newcomer_signal", ())] == 1.0
    share = alarmed.newcomers.share_window if alarmed.newcomers else None
    assert gauges[("defectops_newcomer_share", ("current",))] == pytest.approx(share)
    # the same process as the reference: no signal
    quiet = monitor_window(reference, _changes(rng, 300, 0.05), now=NOW, newcomer_history=[True])
    assert quiet.newcomers is not None
    assert not quiet.newcomers.signal
