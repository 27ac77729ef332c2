"""Streaming drift detectors with the River interface (``update(x)``, ``drift_detected``): Page-Hinkley on the
score stream and an ADWIN-style detector on the positive-prediction stream."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from defectops.config import MonitoringSettings
from defectops.monitoring.drift_records import StreamDrift
from defectops.monitoring.drift_stats import FloatArray


class PageHinkley:
    """Page-Hinkley test for a change of the mean of a stream (River's interface and semantics).

    ``update(x)`` folds in one value; ``drift_detected`` is true right after the value that crossed the
    threshold, and the next update starts afresh. With the running mean ``m_t`` the cumulative sums are
    ``U_t = alpha * U_{t-1} + (x_t - m_t - delta)`` (increase) and
    ``D_t = alpha * D_{t-1} + (x_t - m_t + delta)`` (decrease); an increase is flagged when
    ``U_t - min U > threshold``, a decrease when ``max D - D_t > threshold``.
    """

    def __init__(
        self,
        *,
        delta: float = 0.005,
        threshold: float = 50.0,
        min_instances: int = 30,
        alpha: float = 1.0,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        self.delta = delta
        self.threshold = threshold
        self.min_instances = min_instances
        self.alpha = alpha
        self.mode = mode
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._sum_up = 0.0
        self._min_up = math.inf
        self._sum_down = 0.0
        self._max_down = -math.inf

    @property
    def statistic(self) -> float:
        """The larger of the two Page-Hinkley statistics right now (0 before any value)."""
        if self.n == 0:
            return 0.0
        return max(self._sum_up - self._min_up, self._max_down - self._sum_down)

    def update(self, x: float) -> None:
        """Fold in one value."""
        if self.drift_detected:
            self._reset()
            self.drift_detected = False
        self.n += 1
        self.mean += (x - self.mean) / self.n
        deviation = x - self.mean
        self._sum_up = self.alpha * self._sum_up + deviation - self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._sum_down = self.alpha * self._sum_down + deviation + self.delta
        self._max_down = max(self._max_down, self._sum_down)
        if self.n < self.min_instances:
            return
        up = self._sum_up - self._min_up > self.threshold
        down = self._max_down - self._sum_down > self.threshold
        self.drift_detected = (up and self.mode != "down") or (down and self.mode != "up")


class Adwin:
    """ADWIN-style adaptive window (Bifet & Gavaldà 2007) on a bounded buffer, checked every ``clock`` values.

    Every ``clock`` values it splits the window into an older part (n0 values) and a newer part of
    n1 = clock, 2 clock, ... values (the blocks that arrived since earlier checks), each part at least
    ``min_window_length`` long. With the window variance ``v``, ``m = 1/n0 + 1/n1`` and
    ``dd = ln(2 ln(n) / delta)`` (River's form of the bound), a split whose means differ by more than
    ``sqrt(2 m v dd) + 2/3 dd m`` is a change: the older part of the oldest such split is dropped, the check
    repeats, and ``drift_detected`` is true after this update. Like ADWIN's buckets, the block grid keeps a
    check cheap (O(n / clock) with running sums); unlike them it keeps the last ``max_window`` raw values.
    """

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_window: int = 10_000,
        min_window_length: int = 5,
    ) -> None:
        self.delta = delta
        self.clock = clock
        self.max_window = max_window
        self.min_window_length = min_window_length
        self.drift_detected = False
        self.n_seen = 0
        # running sums of x and x^2 before each slot: the window [start, end) sums to cum[end] - cum[start]
        self._cum: FloatArray = np.zeros(2 * max_window + 1, dtype=np.float64)
        self._cum2: FloatArray = np.zeros(2 * max_window + 1, dtype=np.float64)
        self._start = 0
        self._end = 0

    @property
    def width(self) -> int:
        """Number of values currently in the window."""
        return self._end - self._start

    @property
    def estimation(self) -> float:
        """Mean of the current window (0 when empty)."""
        if self.width == 0:
            return 0.0
        return float(self._cum[self._end] - self._cum[self._start]) / self.width

    def update(self, x: float) -> None:
        """Fold in one value; on a clock tick look for a cut."""
        self.drift_detected = False
        if self._end + 1 == len(self._cum):
            width = self.width
            base, base2 = self._cum[self._start], self._cum2[self._start]
            self._cum[: width + 1] = self._cum[self._start : self._end + 1] - base
            self._cum2[: width + 1] = self._cum2[self._start : self._end + 1] - base2
            self._start, self._end = 0, width
        self._cum[self._end + 1] = self._cum[self._end] + x
        self._cum2[self._end + 1] = self._cum2[self._end] + x * x
        self._end += 1
        if self.width > self.max_window:
            self._start += 1
        self.n_seen += 1
        if self.n_seen % self.clock == 0:
            while self._cut():
                self.drift_detected = True

    def _cut(self) -> bool:
        """Drop the older part at the oldest significant split; True if something was dropped."""
        low = self.min_window_length
        n = self.width
        n1 = np.arange(self.clock, n - low + 1, self.clock, dtype=np.int64)
        n1 = n1[n1 >= low]
        if len(n1) == 0:
            return False
        start, end = self._start, self._end
        total = float(self._cum[end] - self._cum[start])
        mean = total / n
        variance = max(float(self._cum2[end] - self._cum2[start]) / n - mean * mean, 0.0)
        n0 = n - n1
        newer = self._cum[end] - self._cum[end - n1]
        difference = np.abs((total - newer) / n0 - newer / n1)
        m = 1.0 / n0 + 1.0 / n1
        dd = math.log(2.0 * math.log(n) / self.delta)
        epsilon = np.sqrt(2.0 * m * variance * dd) + (2.0 / 3.0) * dd * m
        exceeding = np.flatnonzero(difference > epsilon)
        if len(exceeding) == 0:
            return False
        self._start += int(n0[exceeding].min())
        return True


def stream_drift(
    reference_scores: FloatArray,
    window_scores: FloatArray,
    *,
    settings: MonitoringSettings,
    decision_threshold: float | None = None,
) -> list[StreamDrift]:
    """Run Page-Hinkley on the score and ADWIN on the positive-prediction stream over the window.

    Both first see the last ``stream_warmup`` reference values so that the window is judged against the
    reference, then every window value in order; only detections inside the window count.
    """
    warm = reference_scores[len(reference_scores) - min(settings.stream_warmup, len(reference_scores)) :]
    threshold = settings.decision_threshold if decision_threshold is None else decision_threshold
    page_hinkley = PageHinkley(
        delta=settings.page_hinkley_delta,
        threshold=settings.page_hinkley_threshold,
        min_instances=settings.page_hinkley_min_instances,
    )
    adwin = Adwin(
        delta=settings.adwin_delta, clock=settings.adwin_clock, max_window=settings.adwin_max_window
    )
    for value in warm.tolist():
        page_hinkley.update(value)
        adwin.update(1.0 if value >= threshold else 0.0)
    ph_hits: list[int] = []
    adwin_hits: list[int] = []
    for index, value in enumerate(window_scores.tolist()):
        page_hinkley.update(value)
        if page_hinkley.drift_detected:
            ph_hits.append(index)
        adwin.update(1.0 if value >= threshold else 0.0)
        if adwin.drift_detected:
            adwin_hits.append(index)
    return [
        StreamDrift(
            detector=detector,
            target=target,
            n_warmup=len(warm),
            n_window=len(window_scores),
            detections=len(hits),
            first_detection=hits[0] if hits else None,
            drift_detected=bool(hits),
        )
        for detector, target, hits in (
            ("page_hinkley", "score", ph_hits),
            ("adwin", "positive_rate", adwin_hits),
        )
    ]
