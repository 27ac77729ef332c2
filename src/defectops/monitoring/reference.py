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
