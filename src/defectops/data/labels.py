"""Per-commit labels with verification latency: a verdict, ``defect``, ``clean`` or ``unknown``, and when it
became known.

Why a waiting period: a commit's defect only shows once its fix lands, often months later (Cabral et al.,
ICSE 2019, "Class imbalance evolution and verification latency in just-in-time software defect prediction").
Treating every commit without a fix as clean teaches a model that recent commits are clean, and evaluating
on them flatters it (McIntosh & Kamei, TSE 2018, "Are fix-inducing changes a moving target?"). So a commit
is ``clean`` only once it is older than ``waiting_days`` with no fix linked to it; before that it is
``unknown`` and must be neither trained on nor evaluated. ``label_known_at`` records when the label became
known (defect: the commit time of the first fix linked to it; clean: commit time + waiting period), and
:func:`labels_as_of` returns the labels exactly as they were known at a past time, for honest time-travel
training and evaluation.

The labels table keeps the verdict in the column :data:`VERDICT` (``verdict``); ``label`` elsewhere is always
the 0/1 defect-inducing outcome (the training table's target, the prediction log's realized outcome).
Tables written before the rename named the verdict column ``label``: :func:`upgrade_labels` reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pandera.pandas as pa

from defectops.errors import DataError, InputError

#: The labels table's column holding each commit's verdict, one of :data:`VERDICTS`.
VERDICT = "verdict"
#: The verdicts a commit can have: defect-inducing, clean (old enough with no fix linked), or not yet known.
VERDICTS: tuple[str, ...] = ("defect", "clean", "unknown")
#: What :data:`VERDICT` was called in labels tables written before the rename.
_OLD_VERDICT = "label"
_TS = pd.DatetimeTZDtype("ns", "UTC")

LABELS_SCHEMA = pa.DataFrameSchema(
    {
        "sha": pa.Column(str, pa.Check.str_matches(r"^[0-9a-f]{40}$"), unique=True),
        VERDICT: pa.Column(str, pa.Check.isin(VERDICTS)),
        "label_known_at": pa.Column(_TS, nullable=True),
        "committed_at": pa.Column(_TS),
        "clean_known_at": pa.Column(_TS),
        "first_fix_sha": pa.Column(str, nullable=True),
        "is_merge": pa.Column(bool),
    },
    strict=True,
    coerce=True,
)

LINKS_SCHEMA = pa.DataFrameSchema(
    {
        "fix_sha": pa.Column(str, pa.Check.str_matches(r"^[0-9a-f]{40}$")),
        "inducing_sha": pa.Column(str, nullable=True),
        "path": pa.Column(str, nullable=True),
        "lines": pa.Column(object),
        "variant": pa.Column(str, pa.Check.isin(["ag", "b"])),
        "evidence": pa.Column(str),
        "fix_committed_at": pa.Column(_TS),
    },
    strict=True,
    coerce=True,
)

LINK_COLUMNS = list(LINKS_SCHEMA.columns)


def _utc(value: datetime) -> pd.Timestamp:
    if value.tzinfo is None:
        raise InputError(f"{value!r}: a time without time zone; pass an aware datetime (UTC)")
    return pd.Timestamp(value.astimezone(UTC))


def upgrade_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` with its verdict column named :data:`VERDICT`: a labels table written before the rename
    (verdict column ``label``) is returned renamed, any other table as it is."""
    if VERDICT in labels.columns or _OLD_VERDICT not in labels.columns:
        return labels
    return labels.rename(columns={_OLD_VERDICT: VERDICT})


def empty_links() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in LINK_COLUMNS})
    frame["fix_committed_at"] = pd.Series(dtype=_TS)
    return frame


def validate_links(links: pd.DataFrame) -> pd.DataFrame:
    try:
        return LINKS_SCHEMA.validate(links)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        raise DataError(f"links table does not match its schema: {exc}") from exc


def compute_labels(
    commits: pd.DataFrame, links: pd.DataFrame, *, now: datetime, waiting_days: int
) -> pd.DataFrame:
    """Labels of ``commits`` (``sha``, ``committed_at`` UTC, ``is_merge``) as known at ``now``.

    A commit is ``defect`` when a link with a known inducing commit names it and that fix was committed by
    ``now``; ``clean`` when it is at least ``waiting_days`` old at ``now`` without such a link; else
    ``unknown``.
    """
    if waiting_days < 0:
        raise InputError("waiting_days must be zero or more")
    at = _utc(now)
    wait = pd.Timedelta(days=waiting_days)
    frame = pd.DataFrame(
        {
            "sha": commits["sha"].astype(str),
            "committed_at": pd.to_datetime(commits["committed_at"], utc=True),
            "is_merge": commits["is_merge"].astype(bool),
        }
    ).reset_index(drop=True)
    frame["clean_known_at"] = frame["committed_at"] + wait

    linked = links[links["inducing_sha"].notna()] if len(links) else links
    first = pd.DataFrame(
        {
            "sha": pd.Series(linked["inducing_sha"] if len(linked) else [], dtype=str),
            "fixed_at": pd.to_datetime(
                pd.Series(linked["fix_committed_at"] if len(linked) else []), utc=True
            ),
            "first_fix_sha": pd.Series(linked["fix_sha"] if len(linked) else [], dtype=str),
        }
    ).reset_index(drop=True)
    first = first[first["fixed_at"] <= at].sort_values(["fixed_at", "first_fix_sha"]).drop_duplicates("sha")
    frame = frame.merge(first, on="sha", how="left")
    is_defect = frame["fixed_at"].notna()
    is_clean = ~is_defect & (frame["clean_known_at"] <= at)

    frame[VERDICT] = "unknown"
    frame.loc[is_clean, VERDICT] = "clean"
    frame.loc[is_defect, VERDICT] = "defect"
    # A fix dated before its own bug (clock skew, rebases) cannot make the label known before the commit.
    defect_known = frame["fixed_at"].where(frame["fixed_at"] >= frame["committed_at"], frame["committed_at"])
    frame["label_known_at"] = defect_known.where(is_defect, frame["clean_known_at"].where(is_clean))
    frame["first_fix_sha"] = frame["first_fix_sha"].astype(object).where(is_defect, None)
    out = frame[
        ["sha", VERDICT, "label_known_at", "committed_at", "clean_known_at", "first_fix_sha", "is_merge"]
    ]
    try:
        return LABELS_SCHEMA.validate(out)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:  # pragma: no cover - built above
        raise DataError(f"labels table does not match its schema: {exc}") from exc


def labels_as_of(labels: pd.DataFrame, t: datetime) -> pd.DataFrame:
    """The labels exactly as they were known at ``t``: commits made after ``t`` are left out, a defect whose
    fix came later is ``clean`` (if its waiting period was over) or ``unknown``, and ``label_known_at`` is the
    time that label became known (never after ``t``).
    """
    at = _utc(t)
    labels = upgrade_labels(labels)
    committed = pd.to_datetime(labels["committed_at"], utc=True)
    frame = labels.loc[committed <= at].copy()
    known = pd.to_datetime(frame["label_known_at"], utc=True)
    clean_at = pd.to_datetime(frame["clean_known_at"], utc=True)
    defect = (frame[VERDICT] == "defect") & (known <= at)
    clean = ~defect & (clean_at <= at)
    frame[VERDICT] = "unknown"
    frame.loc[clean, VERDICT] = "clean"
    frame.loc[defect, VERDICT] = "defect"
    new_known = pd.Series(pd.NaT, index=frame.index, dtype=_TS)
    new_known[defect] = known[defect]
    new_known[clean] = clean_at[clean]
    frame["label_known_at"] = new_known
    frame["first_fix_sha"] = frame["first_fix_sha"].where(defect, None)
    return frame.reset_index(drop=True)


def label_counts(labels: pd.DataFrame) -> dict[str, int]:
    counts = upgrade_labels(labels)[VERDICT].value_counts()
    return {name: int(counts.get(name, 0)) for name in VERDICTS}


def waiting_delta(days: int) -> timedelta:
    return timedelta(days=days)
