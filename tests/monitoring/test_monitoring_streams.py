"""Streaming detectors (River-style ``update(x)`` / ``drift_detected``) on deterministic and seeded streams."""

from __future__ import annotations

import numpy as np
import pytest

from defectops.config import MonitoringSettings
from defectops.monitoring.drift_streams import Adwin, PageHinkley, stream_drift


def _first_detection(detector: PageHinkley | Adwin, stream: list[float] | np.ndarray) -> int | None:
    for index, value in enumerate(stream):
        detector.update(float(value))
        if detector.drift_detected:
            return index
    return None


STEP = [0.0] * 4 + [1.0] * 10


def test_page_hinkley_step_up_by_hand() -> None:
    # delta 0: after four zeros mean 0 and U = 0 (= min U). Then ones:
    #   value 5: mean 1/5, U = .8;  value 6: mean 2/6, U = .8 + .6667 = 1.4667;
    #   value 7: mean 3/7, U = 1.4667 + .5714 = 2.0381 > 2 -> detected at index 6
    detector = PageHinkley(delta=0.0, threshold=2.0, min_instances=1)
    assert _first_detection(detector, STEP) == 6
    assert detector.statistic == pytest.approx(2.038095, abs=1e-6)


def test_page_hinkley_delta_and_min_instances_by_hand() -> None:
    # delta .1: U falls by .1 per zero to -.4 (the min); then U = .3, .8667, 1.3381, 1.7381, i.e.
    # U - min = .7, 1.2667, 1.7381, 2.1381 -> detected at the 4th one, index 7
    assert _first_detection(PageHinkley(delta=0.1, threshold=2.0, min_instances=1), STEP) == 7
    # min_instances 10: U - min = 2.0381 at index 6 is not yet allowed; at index 9 (mean .6) U = 3.3825
    assert _first_detection(PageHinkley(delta=0.0, threshold=2.0, min_instances=10), STEP) == 9


def test_page_hinkley_directions() -> None:
    down = [1.0 - v for v in STEP]  # the mirror image: a drop is found by the D sum at the same index
    assert _first_detection(PageHinkley(delta=0.0, threshold=2.0, min_instances=1), down) == 6
    assert _first_detection(PageHinkley(delta=0.0, threshold=2.0, min_instances=1, mode="up"), down) is None


def test_page_hinkley_resets_after_a_detection() -> None:
    detector = PageHinkley(delta=0.0, threshold=2.0, min_instances=1)
    assert _first_detection(detector, STEP) == 6
    detector.update(1.0)  # starts afresh: one value, statistic 0
    assert not detector.drift_detected
    assert detector.n == 1
    assert detector.statistic == 0.0


def test_page_hinkley_seeded_score_shift() -> None:
    # N(.3, .1) for 3000 values, then N(.5, .1). No alarm before the change: with delta .005 and threshold 50
    # the chance of a null excursion that high is about exp(-2 * .005 * 50 / .1**2) = exp(-50).
    # After it, U grows by about .2 * 3000 / (3000 + k) - .005 per value: 600 ln(1 + k/3000) - .005 k = 50
    # gives k ~ 267; noise of the sum (.1 * sqrt(250) = 1.6) and the excursion above min U move it by tens.
    rng = np.random.default_rng(42)
    stream = np.concatenate([rng.normal(0.3, 0.1, 3000), rng.normal(0.5, 0.1, 2000)])
    index = _first_detection(PageHinkley(), stream)
    assert index is not None
    assert 3150 < index < 3350
    assert index == 3238  # the seeded value


def test_adwin_step_by_hand() -> None:
    # clock 32, 64 zeros then ones. Ticks at 32 and 64 see only zeros (no difference). At 96 the splits
    # keep n1 = 32 or 64 newest values:
    #   n1 = 32: means 0 vs 1, diff 1; v = (1/3)(2/3) = .2222, m = 1/64 + 1/32 = .046875,
    #            dd = ln(2 ln 96 / .002) = 8.4261, eps = sqrt(2 m v dd) + 2/3 dd m = .4190 + .2633 = .6823 < 1
    #   n1 = 64: means 0 vs .5, diff .5 < .6823 (same m)
    # -> cut at n0 = 64: drift after the 96th value, the window keeps the 32 ones.
    detector = Adwin(delta=0.002, clock=32)
    stream = [0.0] * 64 + [1.0] * 64
    assert _first_detection(detector, stream) == 95
    assert detector.width == 32
    assert detector.estimation == 1.0
    detector.update(1.0)
    assert not detector.drift_detected


def test_adwin_seeded_positive_rate_shift() -> None:
    # Bernoulli(.3) for 20000 values, then Bernoulli(.6). Ticks fall at multiples of 32; 20000 = 625 * 32.
    # At 96 new values: m = 1/96 + 1/9904 = .01052, v ~ .213, dd = ln(2 ln(10000) / .002) = 9.128,
    # eps = sqrt(2 m v dd) + 2/3 dd m = .202 + .064 = .266 < .3 = the expected difference;
    # at 64 new values eps = .343 > .3. So the change is expected at value 20096 (index 20095).
    rng = np.random.default_rng(1)
    stream = np.concatenate([rng.binomial(1, 0.3, 20000), rng.binomial(1, 0.6, 3000)]).astype(float)
    detector = Adwin()
    assert _first_detection(detector, stream) == 20095
    # the oldest significant split keeps 160 values (64 old + 96 new, seeded): the 9840 older ones are gone
    assert detector.width == 160
    assert detector.estimation == pytest.approx(0.5)


def test_adwin_keeps_a_bounded_window() -> None:
    detector = Adwin(max_window=1000, clock=64)
    rng = np.random.default_rng(2)
    for value in rng.binomial(1, 0.3, 5000):
        detector.update(float(value))
    assert detector.width == 1000
    assert detector.n_seen == 5000


def test_stream_drift_warms_up_on_the_reference() -> None:
    rng = np.random.default_rng(9)
    settings = MonitoringSettings(stream_warmup=2000)
    reference = rng.beta(2, 5, 4000)
    same = rng.beta(2, 5, 3000)
    results = stream_drift(reference, same, settings=settings)
    assert [(r.detector, r.target) for r in results] == [
        ("page_hinkley", "score"),
        ("adwin", "positive_rate"),
    ]
    assert all(r.n_warmup == 2000 and r.n_window == 3000 for r in results)
    assert not any(r.drift_detected for r in results)
    shifted = np.clip(rng.beta(2, 5, 3000) + 0.25, 0, 1)
    found = stream_drift(reference, shifted, settings=settings)
    assert all(r.drift_detected for r in found)
    # the score mean jumps from .286 to .536 at row 0: both react within the first few hundred rows
    assert all(r.first_detection is not None and r.first_detection < 500 for r in found)
