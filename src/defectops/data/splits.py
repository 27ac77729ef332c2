"""Splits that respect time: what a model may learn from, and what it is judged on.

A defect label is only known some time after a change was made (the label waiting period: a change counts as
clean once it stayed unfixed that long). A model deployed at time T can therefore only have learned from
changes made before ``T - gap``. Every split here keeps that rule: each training row satisfies
``time + gap <= first test time``. With ``gap = 0`` training rows may share the first test row's timestamp
(ties are not the future).

All functions take the change times (any order) and return positional indices into them. Rows are ordered
by time with a stable sort, so rows with equal times keep their input order (the OpenStack protocol is
defined on file order). A random split exists for comparison only and must be asked for by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.errors import InputError

IndexArray = npt.NDArray[np.int64]
#: Change times: a datetime Series/Index or array (naive values are read as UTC).
Times = pd.Series | pd.DatetimeIndex | npt.NDArray[np.datetime64] | Sequence[object]


@dataclass(frozen=True)
class Split:
    """One train/test split as positional indices (both in time order)."""

    train: IndexArray
    test: IndexArray
    name: str = "split"
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(np.intersect1d(self.train, self.test)) > 0:
            raise InputError(f"{self.name}: a row is both in train and test")


def _as_ns(times: Times) -> npt.NDArray[np.int64]:
    """Times as int64 nanoseconds since the epoch (UTC)."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))  # type: ignore[arg-type]
    if index.hasnans:
        raise InputError("times contain missing values")
    stamps: npt.NDArray[np.int64] = index.as_unit("ns").asi8.astype(np.int64)
    return stamps


def time_order(times: Times) -> IndexArray:
    """Positions sorted by time; equal times keep their input order (stable)."""
    order: IndexArray = np.argsort(_as_ns(times), kind="stable").astype(np.int64)
    return order


def _gap_ns(gap: timedelta) -> int:
    if gap < timedelta(0):
        raise InputError(f"the gap must not be negative, got {gap}")
    return int(gap / timedelta(microseconds=1)) * 1000


def _train_before(
    stamps: npt.NDArray[np.int64], candidates: IndexArray, test_start: int, gap_ns: int
) -> IndexArray:
    """The candidates whose labels are known at the first test time: ``time + gap <= test_start``."""
    keep: IndexArray = candidates[stamps[candidates] + gap_ns <= test_start]
    return keep


def _describe(
    stamps: npt.NDArray[np.int64], train: IndexArray, test: IndexArray, gap: timedelta
) -> dict[str, str]:
    def iso(ns: int) -> str:
        return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()

    info = {
        "gap": f"{gap / timedelta(days=1):g} days",
        "train_rows": str(len(train)),
        "test_rows": str(len(test)),
    }
    if len(train):
        info["train_start"], info["train_end"] = iso(int(stamps[train].min())), iso(int(stamps[train].max()))
    if len(test):
        info["test_start"], info["test_end"] = iso(int(stamps[test].min())), iso(int(stamps[test].max()))
    return info


def time_split(
    times: Times,
    *,
    test_fraction: float = 0.2,
    gap: timedelta = timedelta(0),
) -> Split:
    """Chronological hold-out: the last ``test_fraction`` of rows (by time) are the test set.

    Training rows are the earlier rows whose labels were known when the test period began
    (``time + gap <= first test time``); rows inside the gap are dropped, never moved to the test set.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    stamps = _as_ns(times)
    order = time_order(times)
    n_test = max(1, round(len(order) * test_fraction))
    if n_test >= len(order):
        raise InputError(f"{len(order)} rows are too few for a time split")
    test = order[len(order) - n_test :]
    train = _train_before(stamps, order[: len(order) - n_test], int(stamps[test[0]]), _gap_ns(gap))
    return Split(train, test, "time", _describe(stamps, train, test, gap))


def ordered_split(n_rows: int, *, test_fraction: float = 0.2) -> Split:
    """The published OpenStack protocol: first ``1 - test_fraction`` of the rows in file order train, the rest
    test. Only meaningful when the file is already in time order (callers check)."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    cut = int(n_rows * (1.0 - test_fraction))
    if cut <= 0 or cut >= n_rows:
        raise InputError(f"{n_rows} rows are too few for a split")
    rows = np.arange(n_rows, dtype=np.int64)
    return Split(
        rows[:cut], rows[cut:], "file-order", {"train_rows": str(cut), "test_rows": str(n_rows - cut)}
    )


def rolling_origin(
    times: Times,
    *,
    n_folds: int = 3,
    test_fraction: float = 0.3,
    gap: timedelta = timedelta(0),
    window: int | None = None,
    min_train_rows: int = 1,
) -> list[Split]:
    """Rolling-origin backtest: the last ``test_fraction`` of rows cut into ``n_folds`` consecutive test
    windows; each fold trains on everything before its window minus the gap (expanding), or on the latest
    ``window`` such rows (sliding). Folds with fewer than ``min_train_rows`` training rows are skipped.
    """
    if n_folds < 1:
        raise InputError(f"n_folds must be at least 1, got {n_folds}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    stamps = _as_ns(times)
    order = time_order(times)
    n = len(order)
    start = n - round(n * test_fraction)
    if start <= 0 or n - start < n_folds:
        raise InputError(f"{n} rows are too few for {n_folds} rolling-origin folds")
    bounds = np.linspace(start, n, n_folds + 1).round().astype(int)
    gap_ns = _gap_ns(gap)
    folds: list[Split] = []
    for k in range(n_folds):
        test = order[bounds[k] : bounds[k + 1]]
        train = _train_before(stamps, order[: bounds[k]], int(stamps[test[0]]), gap_ns)
        if window is not None:
            train = train[-window:]
        if len(train) < max(1, min_train_rows):
            continue
        folds.append(Split(train, test, f"rolling-{k + 1}", _describe(stamps, train, test, gap)))
    return folds


def kamei_monthly(
    times: Times,
    *,
    train_months: int = 2,
    gap_months: int = 2,
    test_months: int = 2,
) -> list[Split]:
    """The time-wise protocol of Kamei et al. data papers (Yang et al. FSE'16, Fu & Menzies FSE'17):
    for every calendar month i (UTC), train on months i..i+1, skip months i+2..i+3, test on months i+4..i+5.

    Months are calendar months counted from the first change, so empty months still count. A fold is kept
    when its whole test window lies within the data and its training and test parts are both non-empty
    (callers drop folds with one class if they must).
    """
    if min(train_months, test_months) < 1 or gap_months < 0:
        raise InputError("train_months and test_months must be >= 1 and gap_months >= 0")
    stamps = _as_ns(times)
    index = pd.DatetimeIndex(pd.to_datetime(stamps, unit="ns", utc=True))
    month = (index.year.to_numpy() * 12 + index.month.to_numpy() - 1).astype(np.int64)
    month -= month.min()
    order = time_order(times)
    folds: list[Split] = []
    last = int(month.max())
    for i in range(last + 1):
        test_lo = i + train_months + gap_months
        test_hi = test_lo + test_months
        if test_hi - 1 > last:
            break  # the test window would run past the data
        in_train = (month[order] >= i) & (month[order] < i + train_months)
        in_test = (month[order] >= test_lo) & (month[order] < test_hi)
        train, test = order[in_train], order[in_test]
        if len(train) == 0 or len(test) == 0:
            continue
        info = _describe(stamps, train, test, timedelta(0))
        info["months"] = f"train {i},{i + train_months - 1}; test {test_lo},{test_hi - 1}"
        folds.append(Split(train, test, f"kamei-{i}", info))
    return folds


def random_split(n_rows: int, *, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A shuffled split, ignoring time. It leaks the future into training and overstates quality; it exists
    only to show that effect and is used only when asked for by name."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_rows).astype(np.int64)
    n_test = max(1, round(n_rows * test_fraction))
    if n_test >= n_rows:
        raise InputError(f"{n_rows} rows are too few for a split")
    return Split(np.sort(perm[n_test:]), np.sort(perm[:n_test]), "random", {"seed": str(seed)})
