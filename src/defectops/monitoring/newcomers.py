"""A new team of authors: the share of changes made by newcomers in the window against the reference.

Why a signal of its own: the author-experience metrics (``exp``, ``rexp``, ``sexp``, ``author_30d``,
``author_90d``) form one feature group, and on real repositories that group drifts in almost every window
(one prolific author moves all five), so a new team adds nothing to the share of drifting groups; and the
champion's score hardly moves when a share of the changes comes from authors with no history (the score's
PSI stays below 0.25). What a new team changes is plain: more changes by people with little experience in
the project. So the question asked is that one.

A change is by a **newcomer** when its author had made fewer than ``newcomer_max_experience`` (10) changes
before it (``exp`` as mined, at the change's time, before any trend adjustment). The check compares the
newcomers' share in the window with the reference's by a one-sided pooled two-proportion z-test
(H1: the window's share is larger)::

    p_pool = (x_ref + x_win) / (n_ref + n_win)
    z = (x_win / n_win - x_ref / n_ref) / sqrt(p_pool (1 - p_pool) (1 / n_ref + 1 / n_win))
    p = 1 - Phi(z) = erfc(z / sqrt(2)) / 2

and it is a **signal** when all of these hold: ``p < alpha``; the share at least ``newcomer_min_ratio`` (2)
times the reference's; at least ``newcomer_min_increase`` (10 points) above it; a window of at least
``min_alarm_predictions`` rows and a reference of at least ``min_samples``. The effect-size conditions keep
a significant but small rise (on ~135 rows a few points) from counting. It is **sustained** when the model's
last ``alarm_drift_checks`` (2) consecutive checks had one, and only then, and only with ``newcomer_alarm``
on, an alarm. Otherwise it is diagnosis: listed with the drift reasons, in the command's output, heal's
record and the HTML report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.config import MonitoringSettings

#: The mined metric that counts an author's earlier changes in the project.
EXPERIENCE = "exp"


class NewcomerShift(BaseModel):
    """The newcomer check of one window: counts, shares, the test, and whether it signals or alarms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_experience: float
    n_reference: int
    newcomers_reference: int
    n_window: int
    newcomers_window: int
    z: float | None = None
    p_value: float | None = None
    #: This check meets every condition (test, ratio, increase, sample sizes).
    signal: bool = False
    #: Consecutive checks with a signal, this one included (0 without one).
    checks: int = 0
    #: The signal was found in ``alarm_drift_checks`` consecutive checks.
    sustained: bool = False
    #: Whether the settings make a sustained signal an alarm (``newcomer_alarm``).
    alarms: bool = False
    skipped_reason: str | None = None

    @property
    def share_reference(self) -> float | None:
        return self.newcomers_reference / self.n_reference if self.n_reference else None

    @property
    def share_window(self) -> float | None:
        return self.newcomers_window / self.n_window if self.n_window else None

    def describe(self) -> str:
        """One line: the shares with their counts, and the test."""
        ref, win = self.share_reference, self.share_window
        shares = (
            f"{_pct(win)} of the window's changes ({self.newcomers_window} of {self.n_window}) by newcomers "
            f"(exp < {self.max_experience:g}) vs {_pct(ref)} of the reference's "
            f"({self.newcomers_reference} of {self.n_reference})"
        )
        if self.z is None or self.p_value is None:
            return shares
        return f"{shares}; two-proportion z = {self.z:.2f}, p = {self.p_value:.3g}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def two_proportion_test(x_ref: int, n_ref: int, x_win: int, n_win: int) -> tuple[float, float] | None:
    """Pooled z and the one-sided p-value of H1 "the window's share is larger" (None when undefined: an
    empty side, or a pooled share of 0 or 1)."""
    if n_ref <= 0 or n_win <= 0:
        return None
    pooled = (x_ref + x_win) / (n_ref + n_win)
    if pooled <= 0 or pooled >= 1:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_win))
    z = (x_win / n_win - x_ref / n_ref) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2))


def _newcomers(frame: pd.DataFrame, limit: float) -> tuple[int, int]:
    """Rows with a known experience, and those below ``limit``."""
    values = pd.to_numeric(frame[EXPERIENCE], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    known = values[~np.isnan(values)]
    return len(known), int((known < limit).sum())


def newcomer_shift(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    settings: MonitoringSettings,
    history: Sequence[bool] = (),
) -> NewcomerShift | None:
    """The newcomer check (module docstring); None when either frame has no ``exp`` column. ``history``:
    whether the model's earlier checks (oldest first) had a newcomer signal."""
    if EXPERIENCE not in reference.columns or EXPERIENCE not in window.columns:
        return None
    limit = settings.newcomer_max_experience
    n_ref, x_ref = _newcomers(reference, limit)
    n_win, x_win = _newcomers(window, limit)
    base = {
        "max_experience": limit,
        "n_reference": n_ref,
        "newcomers_reference": x_ref,
        "n_window": n_win,
        "newcomers_window": x_win,
        "alarms": settings.newcomer_alarm,
    }
    if n_win < settings.min_alarm_predictions or n_ref < settings.min_samples:
        reason = (
            f"{n_win} window rows with a known exp (< {settings.min_alarm_predictions})"
            if n_win < settings.min_alarm_predictions
            else f"{n_ref} reference rows with a known exp (< {settings.min_samples})"
        )
        return NewcomerShift(**base, skipped_reason=f"not judged: {reason}")
    test = two_proportion_test(x_ref, n_ref, x_win, n_win)
    if test is None:
        reason = "not judged: no newcomers, or only newcomers, on both sides"
        return NewcomerShift(**base, skipped_reason=reason)
    z, p = test
    share_ref, share_win = x_ref / n_ref, x_win / n_win
    signal = (
        p < settings.alpha
        and share_win >= settings.newcomer_min_ratio * share_ref
        and share_win - share_ref >= settings.newcomer_min_increase
    )
    checks = 0
    if signal:
        checks = 1
        for earlier in reversed(history):
            if not earlier:
                break
            checks += 1
    return NewcomerShift(
        **base,
        z=z,
        p_value=p,
        signal=signal,
        checks=checks,
        sustained=signal and checks >= settings.alarm_drift_checks,
    )


def newcomer_verdict(
    shift: NewcomerShift | None, settings: MonitoringSettings
) -> tuple[list[str], list[str]]:
    """(alarm reasons, notes) of the check: an alarm only when sustained and ``newcomer_alarm`` is on."""
    if shift is None or not shift.signal:
        return [], []
    needed = settings.alarm_drift_checks
    line = f"a new team? {shift.describe()}"
    if shift.sustained and shift.alarms:
        suffix = f" (in {shift.checks} consecutive checks)" if needed > 1 else ""
        return [line + suffix], []
    if shift.sustained:
        return [], [f"{line} (in {shift.checks} consecutive checks): diagnosis, newcomer_alarm is off"]
    return [], [f"{line}: in {shift.checks} check(s) in a row, {needed} needed"]


def newcomer_status(shift: NewcomerShift, settings_checks: int) -> str:
    """The check in one line for people (the command, heal's record, the HTML report)."""
    if shift.skipped_reason:
        return f"{shift.describe()}; {shift.skipped_reason}"
    if not shift.signal:
        verdict = "no new team (share not at least doubled and 10 points up, or not significant)"
    elif shift.sustained and shift.alarms:
        verdict = f"new team: in {shift.checks} consecutive checks, an alarm"
    elif shift.sustained:
        verdict = f"new team: in {shift.checks} consecutive checks (diagnosis: newcomer_alarm is off)"
    else:
        verdict = f"new team? in {shift.checks} check(s) in a row, {settings_checks} needed"
    return f"{shift.describe()}: {verdict}"
