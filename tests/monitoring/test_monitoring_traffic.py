"""The window length a low-traffic repository needs: worked out by hand."""

from __future__ import annotations

from datetime import timedelta

from defectops.monitoring import traffic_hint


def test_a_full_window_needs_no_hint() -> None:
    assert traffic_hint(100, timedelta(days=30), 100) is None
    assert traffic_hint(250, timedelta(days=7), 100) is None


def test_the_rate_is_extrapolated_and_rounded_up() -> None:
    # 12 predictions in 30 days: 100 take 30 * 100 / 12 = 250 days
    assert traffic_hint(12, timedelta(days=30), 100) == (
        "at this rate (12 predictions in 30 days) a window of 100 predictions spans about 250 days"
    )
    # 7 in 7 days: exactly 100 days; 1 in 30 days: 3,000 days, singular noun
    assert traffic_hint(7, timedelta(days=7), 100) is not None
    assert "spans about 100 days" in str(traffic_hint(7, timedelta(days=7), 100))
    assert traffic_hint(1, timedelta(days=30), 100) == (
        "at this rate (1 prediction in 30 days) a window of 100 predictions spans about 3000 days"
    )
    # 33 in 30 days: 90.9... rounds up to 91
    assert "spans about 91 days" in str(traffic_hint(33, timedelta(days=30), 100))


def test_no_predictions_give_no_rate() -> None:
    assert traffic_hint(0, timedelta(days=30), 100) == (
        "0 predictions in 30 days: no rate to extrapolate a window from"
    )
    assert traffic_hint(0, timedelta(0), 100) is None


def test_short_spans_are_written_in_hours_or_minutes() -> None:
    # a champion promoted 6 minutes ago with 10 predictions: "10 predictions in 0 days ... about 1 days" before
    assert traffic_hint(10, timedelta(minutes=6), 100) == (
        "at this rate (10 predictions in 6 minutes) a window of 100 predictions spans about 1 hour"
    )
    assert traffic_hint(3, timedelta(hours=5), 100) == (
        "at this rate (3 predictions in 5 hours) a window of 100 predictions spans about 7 days"
    )
    assert traffic_hint(1, timedelta(seconds=20), 100) == (
        "at this rate (1 prediction in 1 minute) a window of 100 predictions spans about 34 minutes"
    )
    assert traffic_hint(4, timedelta(days=1, hours=12), 100) == (
        "at this rate (4 predictions in 1.5 days) a window of 100 predictions spans about 38 days"
    )
