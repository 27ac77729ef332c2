"""Load a training table from an external CSV or Parquet file (published datasets or users' own exports).

A :class:`ColumnMapping` says which source column is the label, the time, each feature and (optionally) the
effort, the commit id, the message and the changed paths. Presets cover the published datasets kept in
``/work/shared/data/jit`` (see its README):

* ``kamei``: the Kamei et al. (2013) data as packaged by Yang et al. (FSE'16) and Fu & Menzies (FSE'17)
  (bugzilla, columba, jdt, postgres). In that packaging ``nm`` is ND, ``pd`` is AGE, ``npt`` is NUC/NF, ``la``
  and ``ld`` are divided by LT and ``lt`` by NF, so the loader un-normalises: ``LT = lt*nf``,
  ``LA = la*LT``, ``LD = ld*LT``, ``NUC = npt*nf``. Where ``LT = 0`` (a change that only creates files) the
  packaging left ``la``/``ld`` undivided (e.g. bugzilla transaction 143: ``la=21, ld=13495, lt=0``), so they
  are kept as they are. The products are whole numbers up to float noise and are rounded.
  ``commitdate`` is ``%Y/%m/%d %H:%M`` (read as UTC); the label is ``bug``.
* ``openstack``: Zeng et al. (ISSTA'21), ``_id,date,bug,__,ns,nd,nf,entrophy,...``: ``date`` is unix
  seconds, the label is ``bug > 0``, ``entrophy`` is ENTROPY. The ``__`` column is a copy of the label and is
  never a feature.
* ``canonical``: a table already in the canonical layout of :mod:`defectops.data.schemas`.

Effort is ``churn = la + ld`` unless the mapping names an effort column. Row order of the file is kept (the
OpenStack protocol is defined on file order); splits sort by time with a stable sort.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from defectops.data.schemas import (
    COMMIT,
    DIFF,
    EFFORT,
    FEATURES,
    LABEL,
    MESSAGE,
    PATHS,
    TIME,
    validate_training_table,
)
from defectops.errors import DataError, InputError

TimeFormat = Literal["unix_s", "unix_ms", "iso"]


class ColumnMapping(BaseModel):
    """How the columns of an external table become the canonical training table.

    ``features`` maps a canonical (or user-chosen) feature name to its source column. ``label_threshold``
    turns a count (e.g. number of bugs a change induced) into 0/1: ``label = source > threshold``.
    ``time_format`` is ``unix_s``, ``unix_ms``, ``iso`` or a ``strptime`` pattern; naive times are UTC.
    ``effort`` names a source column holding the inspection effort; when absent, effort = la + ld.
    ``kamei_normalised`` applies the un-normalisation of the Kamei packaging (see the module docstring).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    label_threshold: float = 0.0
    time: str
    time_format: str = "iso"
    features: dict[str, str] = Field(min_length=1)
    effort: str | None = None
    commit: str | None = None
    message: str | None = None
    paths: str | None = None
    diff: str | None = None
    kamei_normalised: bool = False

    @field_validator("features")
    @classmethod
    def _distinct_names(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {LABEL, TIME, EFFORT, COMMIT, MESSAGE, PATHS, DIFF}
        clash = sorted(set(value) & reserved)
        if clash:
            raise ValueError(f"feature names may not be reserved column names: {', '.join(clash)}")
        return value

    def source_columns(self) -> list[str]:
        """Every source column this mapping reads."""
        named = [self.label, self.time, *self.features.values()]
        named += [c for c in (self.effort, self.commit, self.message, self.paths, self.diff) if c is not None]
        return list(dict.fromkeys(named))


_KAMEI_SOURCE = {
    "ns": "ns",
    "nd": "nm",
    "nf": "nf",
    "entropy": "entropy",
    "la": "la",
    "ld": "ld",
    "lt": "lt",
    "fix": "fix",
    "ndev": "ndev",
    "age": "pd",
    "nuc": "npt",
    "exp": "exp",
    "rexp": "rexp",
    "sexp": "sexp",
}

PRESETS: dict[str, ColumnMapping] = {
    "kamei": ColumnMapping(
        label="bug",
        time="commitdate",
        time_format="%Y/%m/%d %H:%M",
        features=_KAMEI_SOURCE,
        commit="transactionid",
        kamei_normalised=True,
    ),
    "openstack": ColumnMapping(
        label="bug",
        time="date",
        time_format="unix_s",
        features={name: ("entrophy" if name == "entropy" else name) for name in FEATURES},
        commit="_id",
    ),
    "canonical": ColumnMapping(
        label=LABEL,
        time=TIME,
        time_format="iso",
        features={name: name for name in FEATURES},
        effort=EFFORT,
    ),
}


def detect_preset(columns: list[str]) -> str | None:
    """The preset whose source columns all appear in ``columns`` (most specific first), if any."""
    present = set(columns)
    for name in ("openstack", "kamei", "canonical"):
        if set(PRESETS[name].source_columns()) <= present:
            return name
    return None


def resolve_mapping(spec: str | Path | Mapping[str, object] | ColumnMapping | None) -> ColumnMapping | None:
    """A mapping from a preset name, inline JSON, a JSON file, a dict, or None (detect from the header).

    Raises InputError for an unknown preset, an unreadable file or an invalid mapping.
    """
    if spec is None or isinstance(spec, ColumnMapping):
        return spec
    raw: object
    if isinstance(spec, Mapping):
        raw = dict(spec)
    else:
        text = str(spec).strip()
        if text in PRESETS:
            return PRESETS[text]
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"--mapping is not valid JSON: {exc}") from None
        else:
            path = Path(text)
            if not path.is_file():
                raise InputError(
                    f"--mapping {text!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file"
                )
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"{path}: cannot read the column mapping: {exc}") from None
    try:
        return ColumnMapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"invalid column mapping: {problems}") from None


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is (no type guessing beyond pandas' own)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt"} or path.name.lower().endswith(".csv.gz"):
            return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from exc
    raise InputError(f"{path}: expected a .csv or .parquet file")


def _parse_time(values: pd.Series, fmt: str, column: str) -> pd.Series:
    try:
        if fmt == "unix_s":
            parsed = pd.to_datetime(pd.to_numeric(values), unit="s", utc=True)
        elif fmt == "unix_ms":
            parsed = pd.to_datetime(pd.to_numeric(values), unit="ms", utc=True)
        elif fmt == "iso":
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
        else:
            parsed = pd.to_datetime(values, format=fmt, utc=True)
    except (TypeError, ValueError) as exc:
        raise DataError(f"column {column!r} does not parse as time ({fmt}): {exc}") from None
    if parsed.isna().any():
        raise DataError(f"column {column!r} has {int(parsed.isna().sum())} missing time(s)")
    return parsed.astype("datetime64[ns, UTC]")


def _numeric(values: pd.Series, column: str) -> np.ndarray:
    if values.dtype == bool or str(values.dtype) == "boolean":
        values = values.astype("float64")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(f"column {column!r} is not numeric (e.g. {example!r})")
    if converted.isna().any():
        raise DataError(f"column {column!r} has {int(converted.isna().sum())} missing value(s)")
    array: np.ndarray = converted.to_numpy(dtype="float64")
    return array


def _kamei_unnormalise(features: dict[str, np.ndarray]) -> None:
    """Undo the Kamei packaging in place: LT = lt*nf; LA = la*LT; LD = ld*LT; NUC = npt*nf."""
    nf = features["nf"]
    lt = np.round(features["lt"] * nf)
    has_lines = lt > 0
    features["lt"] = lt
    features["la"] = np.where(has_lines, np.round(features["la"] * lt), features["la"])
    features["ld"] = np.where(has_lines, np.round(features["ld"] * lt), features["ld"])
    features["nuc"] = np.round(features["nuc"] * nf)


def apply_mapping(frame: pd.DataFrame, mapping: ColumnMapping, *, source: str = "table") -> pd.DataFrame:
    """Turn ``frame`` into a validated canonical training table, keeping its row order."""
    missing = [c for c in mapping.source_columns() if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: the mapping names column(s) the table lacks: {', '.join(missing)}")
    if mapping.kamei_normalised:
        needed = {"nf", "lt", "la", "ld", "nuc"} - set(mapping.features)
        if needed:
            raise InputError(f"kamei_normalised needs the features {', '.join(sorted(needed))}")
    features = {name: _numeric(frame[col], col) for name, col in mapping.features.items()}
    if mapping.kamei_normalised:
        _kamei_unnormalise(features)
    out = pd.DataFrame(features, index=pd.RangeIndex(len(frame)))
    if mapping.effort is not None:
        out[EFFORT] = _numeric(frame[mapping.effort], mapping.effort)
    elif {"la", "ld"} <= set(out.columns):
        out[EFFORT] = out["la"] + out["ld"]
    else:
        raise InputError("the mapping has no effort column and no la/ld features to compute churn from")
    label_values = _numeric(frame[mapping.label], mapping.label)
    out[LABEL] = (label_values > mapping.label_threshold).astype("int64")
    out[TIME] = _parse_time(frame[mapping.time], mapping.time_format, mapping.time).to_numpy()
    if mapping.commit is not None:
        out[COMMIT] = frame[mapping.commit].astype(str).to_numpy()
    if mapping.message is not None:
        out[MESSAGE] = frame[mapping.message].fillna("").astype(str).to_numpy()
    if mapping.paths is not None:
        out[PATHS] = frame[mapping.paths].fillna("").astype(str).to_numpy()
    if mapping.diff is not None:
        out[DIFF] = frame[mapping.diff].fillna("").astype(str).to_numpy()
    table = validate_training_table(out, list(mapping.features))
    table.attrs["features"] = list(mapping.features)
    return table


def load_table(
    path: Path, mapping: str | Path | Mapping[str, object] | ColumnMapping | None = None
) -> pd.DataFrame:
    """Load ``path`` (CSV or Parquet) as a canonical training table.

    ``mapping`` is a preset name (``kamei``, ``openstack``, ``canonical``), a JSON file or string, a dict, a
    :class:`ColumnMapping`, or None to detect a preset from the header. Raises InputError when no mapping
    fits and DataError when the data do not satisfy it.
    """
    frame = read_frame(path)
    resolved = resolve_mapping(mapping)
    if resolved is None:
        preset = detect_preset([str(c) for c in frame.columns])
        if preset is None and {"sha", "author_time", "is_merge"} <= set(frame.columns) and LABEL not in frame:
            # `defectops mine --out` (or a workspace dataset): no label to map; the run joins the SZZ labels.
            raise InputError(
                f"{path} is a table of mined change metrics without labels; `defectops run --repo PATH` "
                "labels and trains on a mined repository (--data takes a labelled table: a label column and "
                "a time column, mapped with --mapping)"
            )
        if preset is None:
            raise InputError(
                f"{path}: the columns match no preset ({', '.join(PRESETS)}); pass --mapping with a JSON "
                "mapping (label, time, features, effort)"
            )
        resolved = PRESETS[preset]
    return apply_mapping(frame, resolved, source=str(path))
