"""The mined datasets: one row per commit (identity and change metrics) and one row per changed file.

Both are checked with Pandera before they are written, so every later stage can rely on the columns, types and
value ranges below.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from defectops.data.columns import CODE_METRIC_COLUMNS, RICH_FEATURES, TERRAFORM_METRIC_COLUMNS
from defectops.data.fingerprint import Fingerprint, write_fingerprint
from defectops.errors import DataError
from defectops.locks import replace_atomically

_NON_NEGATIVE = pa.Check.ge(0)

COMMITS_SCHEMA = pa.DataFrameSchema(
    {
        "repo": pa.Column(str),
        "sha": pa.Column(str, pa.Check.str_matches(r"^[0-9a-f]{40,64}$"), unique=True),
        "parents": pa.Column(str),
        "is_merge": pa.Column(bool),
        "author_name": pa.Column(str),
        "author_email": pa.Column(str),
        "author_time": pa.Column("datetime64[us, UTC]"),
        "committer_time": pa.Column("datetime64[us, UTC]"),
        "message": pa.Column(str),
        "ns": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "nd": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "nf": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "entropy": pa.Column(float, _NON_NEGATIVE, nullable=True),
        "la": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "ld": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "lt": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "fix": pa.Column("boolean", nullable=True),
        "ndev": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "age": pa.Column(float, _NON_NEGATIVE, nullable=True),
        "nuc": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "exp": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "rexp": pa.Column(float, _NON_NEGATIVE, nullable=True),
        "sexp": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        "churn": pa.Column("Int64", _NON_NEGATIVE, nullable=True),
        # The richer features (#20); absent from datasets mined by older versions.
        **{
            name: pa.Column(
                float if name == "rel_churn" or name.endswith("_share") else "Int64",
                _NON_NEGATIVE,
                nullable=True,
                required=False,
            )
            for name in RICH_FEATURES
        },
    },
    checks=[
        pa.Check(lambda df: df["is_merge"] | df["nf"].notna(), error="non-merge commits must be scored"),
        pa.Check(
            lambda df: df["churn"].isna() | (df["churn"] == df["la"] + df["ld"]), error="churn = la + ld"
        ),
    ],
    strict=False,
    coerce=False,
)

FILES_SCHEMA = pa.DataFrameSchema(
    {
        "repo": pa.Column(str),
        "sha": pa.Column(str),
        "path": pa.Column(str),
        "old_path": pa.Column(str, nullable=True),
        "change_type": pa.Column(str, pa.Check.isin(["A", "M", "D", "R", "C", "T", "U", "X"])),
        "added": pa.Column("int64", _NON_NEGATIVE),
        "deleted": pa.Column("int64", _NON_NEGATIVE),
        "binary": pa.Column(bool),
        "submodule": pa.Column(bool),
    },
    strict=False,
)


#: The code-metrics dataset (``datasets/<repo>/code.parquet``): one row per measured non-merge commit, its
#: code and Terraform metrics (:data:`CODE_METRIC_COLUMNS`, :data:`TERRAFORM_METRIC_COLUMNS`), joined onto the
#: commit dataset by ``sha`` when a model uses them. Kept apart so mining change metrics stays fast and each
#: commit is measured once.
CODE_SCHEMA = pa.DataFrameSchema(
    {
        "sha": pa.Column(str, unique=True),
        **{name: pa.Column("float64" if name.endswith(("mean", "mean_delta")) else "int64")
           for name in (*CODE_METRIC_COLUMNS, *TERRAFORM_METRIC_COLUMNS)},
    },
    strict=False,
)  # fmt: skip

#: Files the code metrics could not measure (``datasets/<repo>/code_failures.parquet``): why, never silent.
#: ``kind`` is ``parse_error`` or the skip reason (``binary``, ``symlink``, ``submodule``, ``too_large``).
CODE_FAILURES_SCHEMA = pa.DataFrameSchema(
    {
        "sha": pa.Column(str),
        "path": pa.Column(str),
        "language": pa.Column(str),
        "kind": pa.Column(str),
        "error": pa.Column(str),
    },
    strict=False,
)


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, what: str) -> pd.DataFrame:
    """Check ``frame`` against ``schema``; a failure becomes one readable :class:`DataError`."""
    try:
        validated: pd.DataFrame = schema.validate(frame, lazy=True)
        return validated
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        first = str(exc).strip().splitlines()
        raise DataError(f"{what} failed its schema check: {' '.join(first[:3])}") from exc


def write_table(
    frame: pd.DataFrame,
    path: Path,
    *,
    schema: pa.DataFrameSchema,
    what: str,
    source: str,
    source_head: str,
    now: datetime,
) -> Fingerprint:
    """Validate, write atomically as Parquet (zstd), and fingerprint."""
    validate(frame, schema, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa_arrow.Table.from_pandas(frame, preserve_index=False)
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return write_fingerprint(path, rows=len(frame), source=source, source_head=source_head, now=now)


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: no such dataset")
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame
