"""Models ready to serve, and who answers: the champion, or the challenger for a share of records.

A loaded registry version is wrapped in the fastest exact scorer it allows (:mod:`defectops.serving.scorers`)
and becomes a :class:`ServingModel`. It is smoke-tested when it is prepared (:func:`prepare`): it must score
rows of its own training reference with finite probabilities that agree with the estimator's
``predict_proba``. A model that fails is refused before it can replace the one serving. A
:class:`Deployment` is what one worker serves: champion, challenger and their :class:`Traffic` split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from defectops.errors import DefectOpsError, InputError, ModelError
from defectops.registry import LoadedModel
from defectops.serving.schemas import NUMERIC_FIELDS, TEXT_FIELDS
from defectops.serving.scorers import (
    BoosterScorer,
    ExplainScorer,
    FloatArray,
    ProbaScorer,
    Scorer,
    ScorerKind,
    Scores,
)
from defectops.training import RiskBands, risk_bands_of

TrafficMode = Literal["off", "canary", "shadow"]

#: Largest disagreement between the fast path and ``predict_proba`` the smoke test accepts.
SMOKE_TOLERANCE: Final = 1e-6
_SMOKE_TOP_K: Final = 3


@dataclass(frozen=True, eq=False)
class ServingModel:
    """One registry version, prepared and smoke-tested; immutable, so requests can share it without locks."""

    loaded: LoadedModel
    features: tuple[str, ...]
    text_columns: tuple[str, ...]
    threshold: float
    bands: RiskBands
    scorer: Scorer
    scorer_kind: ScorerKind
    loaded_at: datetime

    @property
    def name(self) -> str:
        return self.loaded.meta.name

    @property
    def version(self) -> int:
        return self.loaded.meta.version

    @property
    def digest(self) -> str | None:
        """The artifact digest this model was read from (see ModelMeta.artifact_digest)."""
        return self.loaded.meta.artifact_digest

    @property
    def version_label(self) -> str:
        return str(self.loaded.meta.version)

    def score(self, values: FloatArray, text: Mapping[str, Sequence[str]] | None, top_k: int) -> Scores:
        """Probabilities and reasons for rows of :attr:`features` (finite values, checked by the caller)."""
        try:
            scores = self.scorer(values, text, top_k)
        except DefectOpsError:
            raise
        except Exception as exc:  # an estimator failing on validated input is a model problem
            raise ModelError(
                f"{self.name} v{self.version} failed to score ({type(exc).__name__}: {exc})"
            ) from exc
        return scores


def prepare(
    loaded: LoadedModel,
    *,
    reference: pd.DataFrame | None,
    threshold: float | None,
    now: datetime,
) -> ServingModel:
    """Wrap a loaded version in its scorer and smoke-test it on rows of its reference (ModelError if not)."""
    meta = loaded.meta
    estimator = loaded.estimator
    features = tuple(meta.features)
    input_columns = getattr(estimator, "input_columns", None)
    columns = [str(c) for c in input_columns()] if callable(input_columns) else list(features)
    text_columns = tuple(c for c in columns if c in TEXT_FIELDS)
    unknown = [f for f in features if f not in NUMERIC_FIELDS]
    if unknown:
        raise ModelError(
            f"{meta.name} v{meta.version} uses inputs the API does not accept: {', '.join(unknown)} "
            f"(accepted: {', '.join(NUMERIC_FIELDS)})"
        )
    decision = float(meta.threshold if threshold is None else threshold)
    if not 0.0 <= decision <= 1.0 or math.isnan(decision):
        raise ModelError(f"{meta.name} v{meta.version} has an invalid threshold {decision}")
    # Without calibration information (a foreign pyfunc model): two bands, low / high, cut at the threshold.
    bands = risk_bands_of(estimator, threshold=decision) or RiskBands(medium=decision, high=decision)
    scorer: Scorer
    kind: ScorerKind
    if _is_lightgbm_jit(estimator) and list(estimator.features_) == list(features) and not text_columns:
        scorer, kind = BoosterScorer(estimator), "booster"
    elif callable(getattr(estimator, "explain", None)):
        scorer, kind = ExplainScorer(estimator, features, decision, bands), "explain"
    else:
        scorer, kind = ProbaScorer(loaded), "proba"
    model = ServingModel(
        loaded=loaded,
        features=features,
        text_columns=text_columns,
        threshold=decision,
        bands=bands,
        scorer=scorer,
        scorer_kind=kind,
        loaded_at=now,
    )
    smoke_test(model, reference)
    return model


def _is_lightgbm_jit(estimator: Any) -> bool:
    from defectops.training import LightGBMJIT

    return isinstance(estimator, LightGBMJIT) and hasattr(estimator, "booster_")


def smoke_rows(model: ServingModel, reference: pd.DataFrame | None, limit: int = 5) -> pd.DataFrame:
    """Up to ``limit`` complete, finite rows of the reference (a row of zeros when it has none)."""
    columns = [*model.features, *model.text_columns]
    if reference is not None and all(c in reference.columns for c in columns) and len(reference):
        numeric = reference.loc[:, list(model.features)].apply(pd.to_numeric, errors="coerce")
        finite = np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=1)
        rows: pd.DataFrame = reference.loc[finite, columns].head(limit).reset_index(drop=True)
        if len(rows):
            return rows
    zeros: dict[str, Any] = {f: [0.0] for f in model.features}
    zeros.update({c: [""] for c in model.text_columns})
    return pd.DataFrame(zeros)


def smoke_test(model: ServingModel, reference: pd.DataFrame | None) -> None:
    """Score reference rows through the serving path and through ``predict_proba``; they must agree."""
    rows = smoke_rows(model, reference)
    values = rows.loc[:, list(model.features)].to_numpy(dtype=np.float64)
    text = {c: rows[c].astype(str).tolist() for c in model.text_columns} or None
    label = f"{model.name} v{model.version}"
    try:
        scores = model.score(values, text, _SMOKE_TOP_K)
        expected = model.loaded.score(rows)
    except DefectOpsError as exc:
        raise ModelError(f"{label} failed its smoke test: {exc}") from exc
    p = scores.probabilities
    if p.shape != (len(rows),) or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ModelError(f"{label} failed its smoke test: probabilities {p.tolist()} are not in [0, 1]")
    reference_p = np.asarray(expected, dtype=np.float64)
    if not np.isfinite(reference_p).all():
        raise ModelError(f"{label} failed its smoke test: predict_proba gives {reference_p.tolist()}")
    gap = float(np.max(np.abs(p - reference_p)))
    if not gap <= SMOKE_TOLERANCE:
        raise ModelError(
            f"{label} failed its smoke test: the serving path and predict_proba differ by {gap:.3g}"
        )
    if model.scorer_kind != "proba" and any(not reasons for reasons in scores.reasons):
        raise ModelError(f"{label} failed its smoke test: no reasons were produced")


# --------------------------------------------------------------------------------------------------
# Who answers: the champion, or the challenger for a share of records (canary) or beside it (shadow)


@dataclass(frozen=True)
class Traffic:
    """The challenger's part: ``off``, ``canary`` (answers ``share`` of records), ``shadow`` (scores too)."""

    mode: TrafficMode = "off"
    share: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("off", "canary", "shadow"):
            raise InputError(f"unknown traffic mode {self.mode!r}")
        if not 0.0 <= self.share <= 1.0 or math.isnan(self.share):
            raise InputError(f"traffic share must be within [0, 1], got {self.share}")
        if (self.mode == "off") != (self.share == 0.0):
            raise InputError(f"traffic mode {self.mode!r} does not go with share {self.share}")


OFF: Final = Traffic()


@dataclass(frozen=True)
class Deployment:
    """What one worker serves right now; replaced as a whole (one attribute store), never mutated."""

    champion: ServingModel | None
    challenger: ServingModel | None
    traffic: Traffic = OFF
    generation: int = 0
    last_error: str | None = None
    #: Why this worker serves a fallback instead of the registry's champion (None when it serves it): set at
    #: start-up when the champion does not load and the last good champion of the audit history does.
    degraded: str | None = None


def route_fraction(prediction_id: str) -> float:
    """A number in [0, 1) fixed by the prediction id: records below the share go to the challenger.

    A hash (not a random draw at request time) makes routing reproducible: from the logged id alone anyone can
    tell which model had to answer, and a retried id would be routed the same way.
    """
    digest = hashlib.blake2b(prediction_id.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 18446744073709551616.0  # 2**64
