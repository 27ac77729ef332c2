"""The training table: one row per labelled change, with canonical column names, checked with Pandera.

Every model, split and metric in defectops reads this one layout, whether the rows were mined from a
repository or loaded from a published dataset (:mod:`defectops.data.external`). Fixing the names here is what
lets a model trained on one source score changes from another.

Columns:

* the 14 change metrics of Kamei et al. (2013), lower-case: ``ns nd nf entropy la ld lt fix ndev age nuc exp
  rexp sexp`` (raw values, never normalised by LT or NF; all non-negative; ``fix`` is 0/1);
* ``churn`` = ``la + ld``, the effort needed to inspect a change (used by the effort-aware metrics);
* ``label``: 1 if the change induced a defect, else 0;
* ``time``: when the change was made, timezone-aware UTC (splits and recency weights use it);
* optional ``commit`` (an identifier), ``message`` (the commit message) and ``paths`` (the changed paths,
  one per line), the last two for the text-aware model.

Extra numeric columns are allowed (users may bring their own features); they are not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa

from defectops.data.columns import CHURN
from defectops.data.columns import FEATURES as FEATURES  # re-exported: part of the training-table layout
from defectops.errors import DataError

# The effort column of a training table is the mined churn, under the same name.
EFFORT = CHURN
LABEL = "label"
TIME = "time"
COMMIT = "commit"
MESSAGE = "message"
PATHS = "paths"
#: The changed lines of a commit (``+``/``-`` lines under each file's path, bounded): the hybrid model.
DIFF = "diff"
TEXT_COLUMNS: tuple[str, ...] = (MESSAGE, PATHS)

_NON_NEGATIVE = pa.Check.ge(0)
_FINITE = pa.Check(lambda s: s.abs() < np.inf, error="finite")


def training_schema(features: Sequence[str] = FEATURES, *, require_text: bool = False) -> pa.DataFrameSchema:
    """The Pandera schema of a training table whose model inputs are ``features``.

    Canonical features must be present, finite and non-negative; other names in ``features`` must be
    present and finite. ``require_text`` makes ``message`` and ``paths`` mandatory (the text-aware model).
    """
    columns: dict[str, pa.Column] = {}
    for name in features:
        checks = [_FINITE, _NON_NEGATIVE] if name in FEATURES else [_FINITE]
        if name == "fix":
            checks.append(pa.Check.isin([0.0, 1.0]))
        columns[name] = pa.Column("float64", checks, nullable=False, coerce=True)
    columns[EFFORT] = pa.Column("float64", [_FINITE, _NON_NEGATIVE], nullable=False, coerce=True)
    columns[LABEL] = pa.Column("int64", pa.Check.isin([0, 1]), nullable=False, coerce=True)
    columns[TIME] = pa.Column("datetime64[ns, UTC]", nullable=False, coerce=True)
    columns[COMMIT] = pa.Column(str, nullable=False, required=False)
    for name in TEXT_COLUMNS:
        columns[name] = pa.Column(str, nullable=False, required=require_text)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def validate_training_table(
    frame: pd.DataFrame, features: Sequence[str] = FEATURES, *, require_text: bool = False
) -> pd.DataFrame:
    """Check ``frame`` against :func:`training_schema`; a failure becomes one readable DataError.

    Features, ``churn`` and ``label`` are coerced (so the mined ``Int64``/``boolean`` columns are accepted
    when they hold no missing values) and ``time`` to UTC nanoseconds; the returned frame is the validated
    copy.
    """
    missing = [c for c in (*features, EFFORT, LABEL, TIME) if c not in frame.columns]
    if missing:
        raise DataError(f"the training table lacks the column(s) {', '.join(missing)}")
    try:
        validated: pd.DataFrame = training_schema(features, require_text=require_text).validate(
            frame, lazy=True
        )
    except pa.errors.SchemaErrors as exc:
        raise DataError(f"the training table failed its schema check: {_describe_failures(exc)}") from exc
    except pa.errors.SchemaError as exc:
        raise DataError(f"the training table failed its schema check: {exc}") from exc
    return validated


def _describe_failures(exc: pa.errors.SchemaErrors, limit: int = 4) -> str:
    """A short line per failing (column, check): a few failing values, not Pandera's full report."""
    cases = exc.failure_cases
    parts: list[str] = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        examples = ", ".join(repr(v) for v in group["failure_case"].head(3).tolist())
        parts.append(f"column {column!r} fails {check} ({len(group)} row(s), e.g. {examples})")
        if len(parts) == limit:
            break
    return "; ".join(parts) or str(exc).splitlines()[0]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs of a training table: the names recorded by the loader (``frame.attrs["features"]``),
    else the canonical features present (in canonical order), else every numeric non-reserved column."""
    recorded = frame.attrs.get("features")
    if recorded:
        return [str(name) for name in recorded if name in frame.columns]
    canonical = [name for name in FEATURES if name in frame.columns]
    if canonical:
        return canonical
    reserved = {EFFORT, LABEL, TIME, COMMIT, DIFF, *TEXT_COLUMNS}
    return [
        str(c) for c in frame.columns if str(c) not in reserved and pd.api.types.is_numeric_dtype(frame[c])
    ]
