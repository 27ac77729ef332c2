"""From a model's probabilities to what a developer sees: a risk label, a risk band and the reasons.

Shared by the service, ``defectops predict`` and the GitHub Action, so that a change gets the same answer
wherever it is scored.

Risk bands are tied to the repository's base rate (the share of defect-inducing changes the model was trained
on), as Mozilla's bugbug does: a probability is read against what is usual for the repository, not against a
fixed 0.5. ``low`` is below the base rate (a change no riskier than usual), ``medium`` from once to twice the
base rate, ``high`` at twice the base rate and above. Every answer also carries the probability as a multiple
of the base rate ("0.4x", "1.4x", "3.1x"), so a change at half the usual risk reads as such without a band of
its own: three bands keep the prediction log's schema and keep "medium" worth a code-scanning warning.
The ``high`` band must be backed by enough training examples: when the model's out-of-fold scores put fewer
than ``MIN_BAND_EXAMPLES`` changes at or above twice the base rate, the cut moves down towards the base rate
until it holds that many, and the bands record how many out-of-fold examples each band held and how many of
them were defect-inducing. The decision threshold (``risk``) is a separate cut, chosen for F1 on the same
folds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.errors import InputError


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


MEDIUM_MULTIPLE: Final = 1.0
"""``medium`` starts at this multiple of the base rate (``low`` is below it)."""
HIGH_MULTIPLE: Final = 2.0
"""``high`` is at or above this multiple of the base rate."""
MIN_BAND_EXAMPLES: Final = 20
"""Out-of-fold training examples the ``high`` band must hold for its cut to stay at twice the base rate."""


@dataclass(frozen=True)
class BandSupport:
    """How many out-of-fold training examples fell in a band, and how many of them were defect-inducing."""

    band: RiskBand
    examples: int
    defects: int

    @property
    def defect_rate(self) -> float:
        return self.defects / self.examples if self.examples else float("nan")

    def as_dict(self) -> dict[str, Any]:
        # RiskBand(...): a model restored by skops holds the band as a plain string.
        return {"band": RiskBand(self.band).value, "examples": self.examples, "defects": self.defects}


@dataclass(frozen=True)
class RiskBands:
    """Probability cut points of the bands (``medium <= high``), the base rate they are multiples of, and the
    training examples behind each band (empty when the model had too few rows for out-of-fold scores)."""

    medium: float
    high: float
    base_rate: float = float("nan")
    support: tuple[BandSupport, ...] = ()

    def __post_init__(self) -> None:
        if not (0.0 <= self.medium <= self.high <= 1.0):
            raise InputError(f"risk bands need 0 <= medium ({self.medium}) <= high ({self.high}) <= 1")

    @classmethod
    def from_base_rate(
        cls,
        base_rate: float,
        scores: npt.ArrayLike | None = None,
        truth: npt.ArrayLike | None = None,
        *,
        min_examples: int = MIN_BAND_EXAMPLES,
    ) -> RiskBands:
        """Cuts at once and twice ``base_rate``; with out-of-fold ``scores`` (and their 0/1 ``truth``), a
        ``high`` band holding fewer than ``min_examples`` has its cut lowered (never below the base rate)
        until it holds that many."""
        if not math.isfinite(base_rate) or not 0.0 <= base_rate <= 1.0:
            raise InputError(f"the base rate must be within [0, 1], got {base_rate}")
        medium = MEDIUM_MULTIPLE * base_rate
        high = min(HIGH_MULTIPLE * base_rate, 1.0)
        if scores is None:
            return cls(medium=medium, high=high, base_rate=base_rate)
        values = np.asarray(scores, dtype=np.float64).ravel()
        labels = np.asarray(truth, dtype=np.int64).ravel()
        if len(values) != len(labels):
            raise InputError(f"{len(values)} scores but {len(labels)} labels")
        if 0 < min_examples <= len(values) and int((values >= high).sum()) < min_examples:
            # The highest cut with min_examples scores at or above it, but never below the base rate.
            high = max(float(np.sort(values)[-min_examples]), medium)
        medium = min(medium, high)
        bands = cls(medium=medium, high=high, base_rate=base_rate)
        which = np.array([bands.band(float(v)) for v in values], dtype=object)
        support = tuple(
            BandSupport(band, int((which == band).sum()), int(labels[which == band].sum()))
            for band in (RiskBand.LOW, RiskBand.MEDIUM, RiskBand.HIGH)
        )
        return cls(medium=medium, high=high, base_rate=base_rate, support=support)

    def band(self, probability: float) -> RiskBand:
        if probability >= self.high:
            return RiskBand.HIGH
        if probability >= self.medium:
            return RiskBand.MEDIUM
        return RiskBand.LOW

    def relative(self, probability: float) -> float:
        """The probability as a multiple of the base rate (NaN when the base rate is unknown or zero)."""
        if not math.isfinite(self.base_rate) or self.base_rate <= 0.0:
            return float("nan")
        return probability / self.base_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "medium": self.medium,
            "high": self.high,
            "base_rate": self.base_rate if math.isfinite(self.base_rate) else None,
            "support": [s.as_dict() for s in self.support],
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RiskBands:
        """The inverse of :meth:`as_dict` (how a saved model keeps its bands)."""
        rate = document.get("base_rate")
        return cls(
            medium=float(document["medium"]),
            high=float(document["high"]),
            base_rate=float("nan") if rate is None else float(rate),
            support=tuple(
                BandSupport(RiskBand(item["band"]), int(item["examples"]), int(item["defects"]))
                for item in document.get("support", ())
            ),
        )

    def describe(self) -> str:
        """One line for reports: the cuts as probabilities and as multiples of the base rate."""
        if not math.isfinite(self.base_rate):
            return f"medium from {self.medium:.3f}, high from {self.high:.3f}"
        return (
            f"base rate {self.base_rate:.1%}; medium from {self.medium:.3f} "
            f"({_times(self.relative(self.medium))} the base rate), high from {self.high:.3f} "
            f"({_times(self.relative(self.high))})"
        )


def _times(multiple: float) -> str:
    return "n/a" if not math.isfinite(multiple) else f"{multiple:.2g}x"


def risk_bands_of(estimator: object, *, threshold: float | None = None) -> RiskBands | None:
    """The bands of any estimator: its own (``JITModel.risk_bands``), else multiples of its recorded base
    rate, else, given a decision ``threshold``, two bands (low / high) cut there;
    None when nothing is known."""
    own = getattr(estimator, "risk_bands", None)
    if callable(own):
        bands = own()
        if isinstance(bands, RiskBands):
            return bands
    rate = float(getattr(estimator, "positive_rate_", float("nan")))
    if math.isfinite(rate) and 0.0 <= rate <= 1.0:
        return RiskBands.from_base_rate(rate)
    if threshold is not None:
        return RiskBands(medium=threshold, high=threshold)
    return None


def multiple_text(multiple: float) -> str:
    """``"1.4x"`` for a relative risk, ``"-"`` when it is unknown."""
    return "-" if not math.isfinite(multiple) else f"{multiple:.1f}x"


def relative_text(probability: float, bands: RiskBands) -> str:
    """``"1.4x the base rate of 12.0%"`` (or an empty string when the base rate is unknown)."""
    multiple = bands.relative(probability)
    if not math.isfinite(multiple):
        return ""
    return f"{multiple:.1f}x the base rate of {bands.base_rate:.1%}"


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
    base_rate: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)
    #: Scored by a model trained on other projects (the starter), not on this repository's labels.
    cross_project: bool = False

    @property
    def known_base_rate(self) -> float | None:
        return self.base_rate if math.isfinite(self.base_rate) else None

    @property
    def relative_risk(self) -> float:
        """The probability as a multiple of the model's base rate (NaN when unknown)."""
        if not math.isfinite(self.base_rate) or self.base_rate <= 0.0:
            return float("nan")
        return self.probability / self.base_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "probability": self.probability,
            "risk": self.risk,
            "risk_band": self.band.value,
            "base_rate": self.known_base_rate,
            "relative_risk": self.relative_risk if math.isfinite(self.relative_risk) else None,
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
                base_rate=bands.base_rate,
                cross_project=cross_project,
            )
        )
    return results
