"""From a model's probabilities to what a developer sees: a risk label, a risk band and the reasons.

Shared by the service, ``defectops predict`` and the GitHub Action, so that a change gets the same answer
wherever it is scored.

Risk bands come from the model's calibration on the most recent labelled data it was trained on:
``high`` at or above the decision threshold (chosen on time-ordered calibration folds), ``medium`` at or
above the recent base rate of defect-inducing changes (riskier than an average change), ``low`` below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import pandas as pd

from defectops.errors import InputError


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class RiskBands:
    """Probability cut points of the bands; ``medium <= high``."""

    medium: float
    high: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.medium <= self.high <= 1.0):
            raise InputError(f"risk bands need 0 <= medium ({self.medium}) <= high ({self.high}) <= 1")

    @classmethod
    def from_calibration(cls, base_rate: float, threshold: float) -> RiskBands:
        """Bands from a model's recent base rate and decision threshold (clamped into order)."""
        high = min(max(threshold, 0.0), 1.0)
        return cls(medium=min(max(base_rate, 0.0), high), high=high)

    def band(self, probability: float) -> RiskBand:
        if probability >= self.high:
            return RiskBand.HIGH
        if probability >= self.medium:
            return RiskBand.MEDIUM
        return RiskBand.LOW


@dataclass(frozen=True)
class Reason:
    """A feature that raised (positive ``contribution``) or lowered the risk, in calibrated log-odds."""

    feature: str
    value: float
    contribution: float

    @property
    def direction(self) -> str:
        return "raises" if self.contribution > 0 else "lowers"

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class Scored:
    """One scored change."""

    probability: float
    risk: bool
    band: RiskBand
    threshold: float
    model_name: str
    model_version: str
    reasons: tuple[Reason, ...] = ()
    sha: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Scored by a model trained on other projects (the starter), not on this repository's labels.
    cross_project: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "probability": self.probability,
            "risk": self.risk,
            "risk_band": self.band.value,
            "threshold": self.threshold,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "reasons": [r.as_dict() for r in self.reasons],
            "cross_project": self.cross_project,
            **self.extra,
        }


class Explainable(Protocol):
    """What scoring needs of a model: calibrated probabilities and exact per-row explanations."""

    def predict_proba(self, X: Any) -> Any: ...

    def explain(self, X: Any, top_k: int = 5) -> Sequence[Any]: ...


def check_finite(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Refuse NaN and infinities in model inputs with a message naming the column."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(f"feature {column!r} must be a finite number (row {int(np.argmax(bad))})")


def score(
    model: Explainable,
    frame: pd.DataFrame,
    *,
    model_name: str,
    model_version: str,
    threshold: float,
    bands: RiskBands,
    top_k: int = 5,
    shas: Sequence[str | None] | None = None,
) -> list[Scored]:
    """Score every row of ``frame`` with probabilities, labels, bands and the ``top_k`` reasons."""
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise InputError(f"threshold must be within [0, 1], got {threshold}")
    explanations = model.explain(frame, top_k=top_k)
    cross_project = bool(getattr(model, "cross_project", False))
    results: list[Scored] = []
    for i, explanation in enumerate(explanations):
        probability = float(explanation.probability)
        reasons = tuple(
            Reason(c.feature, float(c.value), float(c.contribution)) for c in explanation.contributions
        )
        results.append(
            Scored(
                probability=probability,
                risk=probability >= threshold,
                band=bands.band(probability),
                threshold=threshold,
                model_name=model_name,
                model_version=model_version,
                reasons=reasons,
                sha=None if shas is None else shas[i],
                cross_project=cross_project,
            )
        )
    return results
