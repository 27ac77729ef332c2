"""Which part of a model's training snapshot a live window is compared with.

Why not the whole snapshot: a model trained on years of history would be compared with all of it, and a recent
window always differs from a project's distant past (more files, more experienced authors, other habits):
drift every cycle, even right after a retrain. The reference is the recent period the champion was judged on:
the commits of the last ``span_days`` before its final waiting period. Every commit of that span is in the
snapshot with a matured label, whereas from the last waiting period only the defects already fixed are (a
biased sample). A young model with too few such commits keeps at least ``min_rows`` of the latest eligible
ones, or the whole snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from defectops.data import TIME


@dataclass(frozen=True, slots=True)
class ReferenceSpan:
    """The reference actually used: its rows, and the period they cover (or why it is the whole snapshot)."""

    frame: pd.DataFrame
    rows: int
    start: datetime | None
    end: datetime | None
    note: str | None

    def as_dict(self) -> dict[str, object]:
        if self.start is None or self.end is None:
            return {"rows": self.rows, "span": self.note or "whole snapshot"}
        return {"rows": self.rows, "from": self.start.isoformat(), "to": self.end.isoformat()}

    def describe(self) -> str:
        if self.start is None or self.end is None:
            return f"{self.rows} rows ({self.note or 'whole snapshot'})"
        return f"{self.rows} training commits of {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def recent_reference(
    snapshot: pd.DataFrame,
    *,
    trained_at: datetime,
    waiting_days: float,
    span_days: float | None,
    min_rows: int,
) -> ReferenceSpan:
    """The commits of the ``span_days`` before ``trained_at - waiting_days`` (module docstring)."""
    if span_days is None or TIME not in snapshot.columns:
        return ReferenceSpan(snapshot, len(snapshot), None, None, "whole snapshot")
    times = pd.to_datetime(snapshot[TIME], utc=True)
    end = pd.Timestamp(trained_at) - pd.Timedelta(days=waiting_days)
    eligible = snapshot.loc[(times <= end).to_numpy()]
    eligible_times = times.loc[eligible.index]
    start = end - pd.Timedelta(days=span_days)
    chosen = eligible.loc[(eligible_times > start).to_numpy()]
    if len(chosen) < min_rows:
        chosen = eligible.tail(min_rows)
    if len(chosen) < min_rows:  # a young model: the whole snapshot
        return ReferenceSpan(
            snapshot, len(snapshot), None, None, "whole snapshot (too few rows before the wait)"
        )
    chosen_times = times.loc[chosen.index]
    first, last = chosen_times.min(), chosen_times.max()
    return ReferenceSpan(
        chosen.reset_index(drop=True),
        len(chosen),
        first.to_pydatetime(),
        last.to_pydatetime(),
        None,
    )


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``2w`` (a duration before ``now``) or an ISO date/time (UTC when it has no zone)."""
    from defectops.errors import InputError

    value = text.strip().lower()
    units = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    if value and value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * units[value[-1]]
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r}: use a duration (7d, 12h, 2w) or a date (YYYY-MM-DD)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def traffic_hint(n_window: int, span: timedelta, minimum: int) -> str | None:
    """How long a window must be to hold ``minimum`` predictions at the rate seen in ``span`` (None: it does).

    Why: a repository with a few commits a month never fills a 30-day window (flask served 66 commits in a
    year), so its every check reads "not judged". Saying how many days the minimum takes at this rate turns
    that into something a user can act on (a longer window), instead of lowering the minimum, which only
    makes the alarms noise (the replay's flask windows of ~34 predictions: 2 false alarms in 12).

    Spans and the window needed are written in minutes or hours below a day: a champion promoted minutes ago
    read "10 predictions in 0 days ... spans about 1 days" (the span rounded to a tenth of a day).
    """
    if n_window >= minimum or span <= timedelta(0):
        return None
    rate = f"{n_window} prediction{'' if n_window == 1 else 's'} in {_duration(span)}"
    if n_window == 0:
        return f"{rate}: no rate to extrapolate a window from"
    needed = _duration(span * minimum / n_window, round_up=True)
    return f"at this rate ({rate}) a window of {minimum} predictions spans about {needed}"


def _duration(span: timedelta, *, round_up: bool = False) -> str:
    """``"30 days"``, ``"1.5 days"``, ``"7 hours"``, ``"1 minute"``: the largest unit the span fills once
    (days to a tenth, or whole days rounded up with ``round_up``; hours and minutes whole)."""
    seconds = span.total_seconds()
    units = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0))
    unit, size = next((u, s) for u, s in units if seconds >= s or u == "minute")
    value = seconds / size
    if round_up:
        amount = float(max(math.ceil(value - 1e-9), 1))
    else:
        amount = round(value, 1) if unit == "day" else float(max(round(value), 1))
    text = str(int(amount)) if amount.is_integer() else f"{amount:.1f}"
    return f"{text} {unit}{'' if amount == 1 else 's'}"
