"""The model's input contract: for every change metric its dtype, unit, valid range, and how a value is
normalised on the way in.

Why one module: a metric travels through the miner (``Int64``/``boolean`` columns), the training table
(float64), the HTTP API (JSON numbers or, for ``fix``, booleans), the prediction log (JSON scalars) and
monitoring. When each hop kept its own idea of the type, ``fix`` was logged as ``true`` by
``/v1/commits/score``, as ``0.0`` by ``/v1/predict`` and stored as 0.0/1.0 in the training reference, and the
drift check saw two disjoint categories on every cycle. Every hop now calls :meth:`FeatureSpec.normalise`,
:func:`normalise_inputs` or :func:`normalise_frame`: a model input is a float64 everywhere, a flag is 0.0 or
1.0, a missing value is None/NaN.

``grows_with_age`` marks the metrics that trend upward with the age of a project by construction (they count
or weigh everything that happened before the change: the author's experience, the files' earlier changes and
developers, the size of the files). Monitoring compares them without their normal trend
(docs/monitoring.md, "Features that grow with project age").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np
import pandas as pd

from defectops.data.columns import CHURN, FEATURES, RICH_FEATURES

__all__ = ["CONTRACT", "FeatureSpec", "normalise_frame", "normalise_inputs"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One model input: its name, unit, valid range and whether it grows with the project's age."""

    name: str
    unit: str
    description: str
    minimum: float = 0.0
    maximum: float | None = None
    flag: bool = False
    grows_with_age: bool = False

    #: Every model input is a float64 from the miner to the log (a flag too: 0.0 or 1.0).
    dtype: ClassVar[str] = "float64"

    def normalise(self, value: object) -> float | None:
        """``value`` as the float the model, the log and monitoring use; None when missing.

        Booleans (Python or NumPy) become 1.0/0.0, integers and NumPy scalars floats; NaN and None are
        missing. A value outside the valid range (or a flag other than 0/1) raises ValueError naming the
        metric, since it is a bug upstream rather than something to guess around.
        """
        if value is None or value is pd.NA:
            return None
        if isinstance(value, bool | np.bool_):
            number = 1.0 if value else 0.0
        elif isinstance(value, int | float | np.integer | np.floating):
            number = float(value)
        else:
            raise ValueError(f"{self.name} must be a number, got {value!r}")
        if math.isnan(number):
            return None
        if not math.isfinite(number):
            raise ValueError(f"{self.name} must be finite, got {value!r}")
        if self.flag and number not in (0.0, 1.0):
            raise ValueError(f"{self.name} is a flag: 0 or 1 (or false/true), got {value!r}")
        if number < self.minimum or (self.maximum is not None and number > self.maximum):
            top = "" if self.maximum is None else f", at most {self.maximum:g}"
            raise ValueError(f"{self.name} must be at least {self.minimum:g}{top}, got {value!r}")
        return number


_SPECS: Final = (
    FeatureSpec("ns", "subsystems", "Modified subsystems."),
    FeatureSpec("nd", "directories", "Modified directories."),
    FeatureSpec("nf", "files", "Modified files."),
    FeatureSpec("entropy", "bits", "Spread of the change over files."),
    FeatureSpec("la", "lines", "Lines added."),
    FeatureSpec("ld", "lines", "Lines deleted."),
    FeatureSpec("lt", "lines", "Lines in the files before the change.", grows_with_age=True),
    FeatureSpec("fix", "flag", "Whether the change fixes a defect.", maximum=1.0, flag=True),
    FeatureSpec("ndev", "developers", "Developers who changed the files before.", grows_with_age=True),
    FeatureSpec("age", "days", "Days since the files were last changed.", grows_with_age=True),
    FeatureSpec("nuc", "changes", "Unique earlier changes of the files.", grows_with_age=True),
    FeatureSpec("exp", "changes", "Author's earlier changes.", grows_with_age=True),
    FeatureSpec("rexp", "weighted changes", "Author's recent experience.", grows_with_age=True),
    FeatureSpec("sexp", "changes", "Author's earlier changes to the subsystems.", grows_with_age=True),
    FeatureSpec(CHURN, "lines", "la + ld (effort)."),
    # The mined richer features (#20, docs/metrics.md "Richer features").
    FeatureSpec("file_fixes", "changes", "Earlier fix commits of the changed files.", grows_with_age=True),
    FeatureSpec(
        "dir_fixes", "changes", "Earlier fix commits of the changed directories.", grows_with_age=True
    ),
    FeatureSpec("rel_churn", "ratio", "(la + ld) / max(lt, 1): churn relative to the files' size."),
    FeatureSpec("src_churn", "lines", "Churn in source files."),
    FeatureSpec("test_churn", "lines", "Churn in test files."),
    FeatureSpec("doc_churn", "lines", "Churn in documentation files."),
    FeatureSpec("build_churn", "lines", "Churn in build, packaging and CI files."),
    FeatureSpec("author_30d", "changes", "Author's changes in the 30 days before."),
    FeatureSpec("author_90d", "changes", "Author's changes in the 90 days before."),
    FeatureSpec(
        "src_share", "ratio", "src_churn / max(la + ld, 1): source files' share of the churn.", maximum=1.0
    ),
    FeatureSpec(
        "test_share", "ratio", "test_churn / max(la + ld, 1): test files' share of the churn.", maximum=1.0
    ),
    FeatureSpec(
        "doc_share", "ratio", "doc_churn / max(la + ld, 1): documentation's share of the churn.", maximum=1.0
    ),
    FeatureSpec(
        "build_share",
        "ratio",
        "build_churn / max(la + ld, 1): build, packaging and CI files' share.",
        maximum=1.0,
    ),
)

#: The contract of every mined metric (the 14 features of Kamei et al., churn, the richer features), by name.
CONTRACT: Final[Mapping[str, FeatureSpec]] = {spec.name: spec for spec in _SPECS}
assert tuple(CONTRACT) == (*FEATURES, CHURN, *RICH_FEATURES)  # exactly the mined metrics


def normalise_inputs(inputs: Mapping[str, object]) -> dict[str, object]:
    """A copy of one record's inputs with every contract metric normalised; other inputs unchanged.

    A missing metric (None/NaN) is left out, as the log stores only what was given.
    """
    out: dict[str, object] = {}
    for name, value in inputs.items():
        spec = CONTRACT.get(name)
        if spec is None:
            out[name] = value
            continue
        number = spec.normalise(value)
        if number is not None:
            out[name] = number
    return out


def normalise_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` whose contract columns (of ``columns``, default all) are float64, NaN for missing.

    Reads what earlier versions wrote: ``boolean``/``bool``/``Int64`` columns and object columns mixing
    ``True`` and ``0.0`` (a prediction-log window of ``fix`` from before the contract) all become 0.0/1.0.
    Values are not range-checked here (a window is read, not accepted); :meth:`FeatureSpec.normalise` does
    that on the way in.
    """
    names = [c for c in (frame.columns if columns is None else columns) if c in CONTRACT and c in frame]
    if not names:
        return frame.copy()
    out = frame.copy()
    for name in names:
        column = out[name]
        if column.dtype == np.float64:
            continue
        if column.dtype == object:
            column = column.map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
        numbers = pd.to_numeric(column, errors="coerce").astype("Float64")
        out[name] = numbers.to_numpy(np.float64, na_value=np.nan)
    return out
