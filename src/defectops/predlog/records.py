"""What the prediction log stores: checked prediction records and the rules their values follow.

Everything here is pure validation (no database): ids become canonical UUID text, times UTC, shas full
lower-case hex; input names and values are held to what the log can store and give back exactly.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from typing import Any, Final

from defectops.data import PREDICTION_COLUMNS, RISK_BAND_NAMES
from defectops.errors import InputError

__all__ = [
    "CheckedInputs",
    "InputValue",
    "PredictionRecord",
    "aware",
    "canonical_uuid",
    "checked_prediction_id",
    "checked_sha",
    "normal_sha",
    "utc",
]

InputValue = bool | int | float | str | None

_SHA_RE: Final = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

#: Input names may not use the fixed columns of :meth:`PredictionLog.window` (:data:`PREDICTION_COLUMNS`,
#: defined in :mod:`defectops.data.columns`), so a window's columns never clash.
_RESERVED: Final = frozenset(PREDICTION_COLUMNS)
_BANDS: Final[dict[str, str]] = {name: name for name in RISK_BAND_NAMES}

_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Input names that passed :func:`_check_input_name` (a service logs the same few names millions of times).
_CHECKED_NAMES: set[str] = set()
_CHECKED_NAMES_LIMIT: Final = 4096


def canonical_uuid(value: object, what: str) -> str:
    """Canonical UUID text of ``value`` (ValueError naming ``what`` if it is no UUID)."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value  # already canonical text (what uuid.UUID would give back)
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from None


def utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC (ValueError if it is naive: a guessed zone would shift the log)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def aware(value: datetime, what: str) -> datetime:
    """``utc`` for arguments of the public methods: a naive or non-datetime value is an InputError."""
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a datetime, got {value!r}")
    try:
        return utc(value, what)
    except ValueError as error:
        raise InputError(str(error)) from None


def normal_sha(value: str | None) -> str | None:
    """A full sha in lower case, or None (ValueError for anything else)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"commit_sha must be a string, got {value!r}")
    sha = value.strip().lower()
    if not _SHA_RE.match(sha):
        raise ValueError(f"commit_sha must be a full 40- or 64-character hex sha, got {value!r}")
    return sha


def _bad(message: str) -> InputError:
    return InputError(f"invalid prediction record: {message}")


def _probability(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not (0.0 <= number <= 1.0):  # also refuses NaN
        raise _bad(f"{what} must be a finite number in [0, 1], got {value!r}")
    return number


def _text(value: object, what: str, limit: int, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{what} must be a non-empty string of at most {limit} characters, got {value!r}")
    return value if type(value) is str else str.__str__(value)


def _check_input_name(name: object) -> None:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise _bad(f"input name must be a string of 1-200 characters, got {name!r}")
    if name in _RESERVED:
        raise _bad(f"input name {name!r} is reserved for a prediction-log column")
    if len(_CHECKED_NAMES) < _CHECKED_NAMES_LIMIT:
        _CHECKED_NAMES.add(name)


def _input_value(name: str, value: object) -> InputValue:
    """A JSON scalar that round-trips exactly; numpy scalars are unwrapped, NaN and infinities refused."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _bad(f"input {name!r} is {value}; only finite numbers can be logged")
        return value  # type: ignore[return-value]
    if kind is int or kind is str or kind is bool or value is None:
        return value  # type: ignore[return-value]
    # Subclasses (numpy.float64, IntEnum, ...) are stored as the plain value.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _input_value(name, float(value))
    if isinstance(value, str):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars that are no Python subclasses (int64, bool_)
    if callable(item):
        unwrapped = item()
        if type(unwrapped) in (float, int, str, bool):
            return _input_value(name, unwrapped)
    raise _bad(
        f"input {name!r} has type {kind.__name__}; only numbers, strings, booleans and null are logged"
    )


class CheckedInputs(dict[str, InputValue]):
    """Inputs that a schema already held to the log's rules: names of 1-200 characters that are no
    prediction-log column, values that are finite numbers, strings, booleans or null (plain Python types).

    :class:`PredictionRecord` takes these as they are instead of checking each value again (about half of
    its cost, i.e. milliseconds per 1,000-record request). Only code whose schema guarantees the rules builds
    them: the service, from :class:`defectops.serving.schemas.ChangeRecord` (a test checks that schema
    against the rules). Anything else passes a plain mapping and gets every name and value checked.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One logged prediction: what was asked, what was answered, and by which model.

    ``served`` is False for a shadow prediction (scored and logged, not returned). A shadow prediction may
    name the served prediction for the same input in ``shadow_of``, so feedback for the served id labels it
    too. ``risk_label`` is 1 exactly when ``score >= threshold`` (checked, so the log cannot contradict
    itself). ``inputs`` maps input (feature) names to JSON scalars.

    A dataclass validated in ``__post_init__`` rather than a pydantic model: the service builds one per
    answered record on the request path, and this is about twice as fast. Invalid values raise
    :class:`InputError`; ids and times are normalised (canonical UUID text, UTC).
    """

    prediction_id: str
    created_at: datetime
    model_name: str
    model_version: str
    served: bool
    inputs: Mapping[str, InputValue]
    score: float
    threshold: float
    risk_label: int
    risk_band: str  # "minimal" | "low" | "medium" | "high" (a StrEnum with those values is fine; plain str)
    repo: str | None = None
    commit_sha: str | None = None
    shadow_of: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "prediction_id", canonical_uuid(self.prediction_id, "prediction_id"))
            if self.shadow_of is not None:
                set_(self, "shadow_of", canonical_uuid(self.shadow_of, "shadow_of"))
            if not isinstance(self.created_at, datetime):
                raise ValueError(f"created_at must be a datetime, got {self.created_at!r}")
            if self.created_at.tzinfo is not UTC:
                set_(self, "created_at", utc(self.created_at, "created_at"))
            if self.commit_sha is not None:
                set_(self, "commit_sha", normal_sha(self.commit_sha))
        except ValueError as error:
            raise _bad(str(error)) from None
        # Plain built-in values only from here on: drivers bind str/int/bool subclasses (StrEnum, numpy
        # scalars) differently or not at all (psycopg writes an Enum's *name*).
        set_(self, "model_name", _text(self.model_name, "model_name", 200))
        set_(self, "model_version", _text(self.model_version, "model_version", 100))
        set_(self, "repo", _text(self.repo, "repo", 255, optional=True))
        served: object = self.served
        numpy_bool = not isinstance(served, int | float | str) and served in (True, False)
        if not isinstance(served, bool) and not numpy_bool:
            raise _bad(f"served must be a bool, got {served!r}")
        set_(self, "served", bool(served))
        set_(self, "score", _probability(self.score, "score"))
        set_(self, "threshold", _probability(self.threshold, "threshold"))
        label: object = self.risk_label
        if isinstance(label, bool) or not isinstance(label, Integral) or label not in (0, 1):
            raise _bad(f"risk_label must be 0 or 1, got {label!r}")
        set_(self, "risk_label", int(label))
        band = _BANDS.get(self.risk_band) if isinstance(self.risk_band, str) else None
        if band is None:
            raise _bad(f"risk_band must be one of {', '.join(RISK_BAND_NAMES)}, got {self.risk_band!r}")
        set_(self, "risk_band", band)
        if not isinstance(self.inputs, Mapping):
            raise _bad(f"inputs must be a mapping of input names to values, got {type(self.inputs).__name__}")
        if type(self.inputs) is CheckedInputs:
            inputs: dict[str, InputValue] = self.inputs  # checked by the schema that built it
        else:
            inputs = self._checked_inputs()
        set_(self, "inputs", inputs)
        expected = 1 if self.score >= self.threshold else 0
        if self.risk_label != expected:
            raise _bad(
                f"risk_label {self.risk_label} contradicts score {self.score} and threshold {self.threshold} "
                "(risk_label must be 1 exactly when score >= threshold)"
            )
        if self.served and self.shadow_of is not None:
            raise _bad("a served prediction cannot be the shadow of another (shadow_of needs served=False)")
        if self.commit_sha is not None and self.repo is None:
            raise _bad("commit_sha needs repo: feedback joins on (repo, commit_sha)")

    def _checked_inputs(self) -> dict[str, InputValue]:
        """A plain copy of the inputs with every name and value checked (numpy scalars unwrapped)."""
        inputs: dict[str, InputValue] = {}
        checked = _CHECKED_NAMES
        for name, value in self.inputs.items():
            if name not in checked:
                _check_input_name(name)
            kind = type(value)
            # The common cases inline (finite float: x - x is 0.0 only then), everything else checked fully.
            if (kind is float and value - value == 0.0) or kind is int or kind is str or kind is bool:  # type: ignore[operator]
                inputs[name] = value
            else:
                inputs[name] = _input_value(name, value)
        return inputs


def checked_prediction_id(prediction_id: str) -> str:
    """A prediction id argument of a public method as canonical UUID text (InputError if it is none)."""
    try:
        return canonical_uuid(prediction_id, "prediction_id")
    except ValueError as error:
        raise InputError(str(error)) from None


def checked_sha(commit_sha: str) -> str:
    """A commit sha argument of a public method, normalised (InputError if it is no full sha)."""
    try:
        sha = normal_sha(commit_sha)
    except ValueError as error:
        raise InputError(str(error)) from None
    return sha or ""
