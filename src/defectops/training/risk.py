"""From a model's probabilities to what a developer sees: a risk label, a risk band and the reasons.

Shared by the service, ``defectops predict`` and the GitHub Action, so that a change gets the same answer
wherever it is scored.

Risk bands are tied to the repository's base rate (the share of defect-inducing changes the model was trained
on), as Mozilla's bugbug does: a probability is read against what is usual for the repository, not against a
fixed 0.5. Four bands, cut at half, once and twice the base rate:

* ``minimal``: below half the base rate, clearly safer than a usual change (nothing to look at);
* ``low``: from half the base rate up to it, below the usual risk;
* ``medium``: from once to twice the base rate, riskier than usual (worth a code-scanning warning);
* ``high``: twice the base rate and above (worth a closer review).

Why these names: ``medium`` and ``high`` keep exactly the meaning they had when there were three bands, and
``low`` stays "below the base rate", only narrowed to its upper half, so a rule or a dashboard written for
three bands still reads right. ``minimal`` is a word of its own, not told apart from ``low`` by a prefix as
``very_low`` would be (easy to misread in a table column, awkward in a sentence: "a minimal defect risk"), and
it fits the prediction log's eight-character band column. Every answer also carries the probability as a
multiple of the base rate ("0.4x", "1.4x", "3.1x") and the base rate itself.

Every band must be backed by enough training examples: with the model's out-of-fold scores, each band should
hold at least ``MIN_BAND_EXAMPLES`` of them. The base-rate cut never moves (``medium`` always means "riskier
than usual"). The two other cuts each separate an outer band (``high``, ``minimal``) from an inner one
(``medium``, ``low``) on their side of the base rate; a cut where either of its bands holds too few examples
moves to the nearest out-of-fold score at which both hold enough. When one side of the base rate has too few
scores for both bands, the outer band is backed first (its cut moves towards the base rate, never past it) and
the inner band keeps what remains, possibly nothing. The bands record how many out-of-fold examples each band
held and how many of them were defect-inducing. Models saved with three bands (before ``minimal``) still
load: their ``low`` cut is half their base rate, marked as derived, without support for the two lower bands.
The decision threshold (``risk``) is a separate cut, chosen for F1 on the same folds.
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
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


RISK_BANDS: Final[tuple[RiskBand, ...]] = (RiskBand.MINIMAL, RiskBand.LOW, RiskBand.MEDIUM, RiskBand.HIGH)
"""Every band, from the least to the most risky."""
LOW_MULTIPLE: Final = 0.5
"""``low`` starts at this multiple of the base rate (``minimal`` is below it)."""
MEDIUM_MULTIPLE: Final = 1.0
"""``medium`` starts at this multiple of the base rate (``low`` is below it)."""
HIGH_MULTIPLE: Final = 2.0
"""``high`` is at or above this multiple of the base rate."""
MIN_BAND_EXAMPLES: Final = 20
"""Out-of-fold training examples every band should hold for the cuts to stay at their multiples."""


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


def _nearest(candidates: npt.NDArray[np.float64], ok: npt.NDArray[np.bool_], desired: float) -> float | None:
    """The candidate cut nearest ``desired`` among those marked ``ok`` (the lower one on a tie)."""
    if not ok.any():
        return None
    chosen = candidates[ok]
    return float(chosen[int(np.argmin(np.abs(chosen - desired)))])


def _high_cut(ordered: npt.NDArray[np.float64], desired: float, base: float, n: int) -> float:
    """The cut between ``high`` (at or above it) and ``medium`` (from ``base`` up to it): see the module."""
    start = int(np.searchsorted(ordered, base, "left"))
    candidates = np.unique(np.concatenate([[desired, base], ordered[start:]]))
    candidates = candidates[candidates >= base]
    position = np.searchsorted(ordered, candidates, "left")
    outer, inner = len(ordered) - position, position - start
    both = _nearest(candidates, (outer >= n) & (inner >= n), desired)
    if both is not None:
        return both
    outer_only = _nearest(candidates, outer >= n, desired)
    return base if outer_only is None else outer_only


def _low_cut(ordered: npt.NDArray[np.float64], desired: float, base: float, n: int) -> float:
    """The cut between ``minimal`` (below it) and ``low`` (from it up to ``base``): see the module."""
    end = int(np.searchsorted(ordered, base, "left"))
    candidates = np.unique(np.concatenate([[desired, base], ordered[:end]]))
    candidates = candidates[candidates <= base]
    position = np.searchsorted(ordered, candidates, "left")
    outer, inner = position, end - position
    both = _nearest(candidates, (outer >= n) & (inner >= n), desired)
    if both is not None:
        return both
    outer_only = _nearest(candidates, outer >= n, desired)
    return base if outer_only is None else outer_only


@dataclass(frozen=True)
class RiskBands:
    """Probability cut points of the bands (``low <= medium <= high``, where those bands start; ``minimal``
    is below ``low``), the base rate they are multiples of, and the training examples behind each band (empty
    when the model had too few rows for out-of-fold scores). ``low_derived``: the ``low`` cut was derived as
    half the base rate of a model saved with three bands, not checked against its examples."""

    medium: float
    high: float
    low: float = 0.0
    base_rate: float = float("nan")
    support: tuple[BandSupport, ...] = ()
    low_derived: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.medium <= self.high <= 1.0):
            raise InputError(
                f"risk bands need 0 <= low ({self.low}) <= medium ({self.medium}) <= high ({self.high}) <= 1"
            )

    @classmethod
    def from_base_rate(
        cls,
        base_rate: float,
        scores: npt.ArrayLike | None = None,
        truth: npt.ArrayLike | None = None,
        *,
        min_examples: int = MIN_BAND_EXAMPLES,
    ) -> RiskBands:
        """Cuts at half, once and twice ``base_rate``; with out-of-fold ``scores`` (and their 0/1 ``truth``),
        the outer cuts move as the module doc says so that every band holds ``min_examples`` when it can."""
        if not math.isfinite(base_rate) or not 0.0 <= base_rate <= 1.0:
            raise InputError(f"the base rate must be within [0, 1], got {base_rate}")
        low = LOW_MULTIPLE * base_rate
        medium = MEDIUM_MULTIPLE * base_rate
        high = min(HIGH_MULTIPLE * base_rate, 1.0)
        if scores is None:
            return cls(low=low, medium=medium, high=high, base_rate=base_rate)
        values = np.asarray(scores, dtype=np.float64).ravel()
        labels = np.asarray(truth, dtype=np.int64).ravel()
        if len(values) != len(labels):
            raise InputError(f"{len(values)} scores but {len(labels)} labels")
        if 0 < min_examples <= len(values):
            ordered = np.sort(values)
            high = _high_cut(ordered, high, medium, min_examples)
            low = _low_cut(ordered, low, medium, min_examples)
        bands = cls(low=low, medium=medium, high=high, base_rate=base_rate)
        which = np.array([bands.band(float(v)) for v in values], dtype=object)
        support = tuple(
            BandSupport(band, int((which == band).sum()), int(labels[which == band].sum()))
            for band in RISK_BANDS
        )
        return cls(low=low, medium=medium, high=high, base_rate=base_rate, support=support)

    def band(self, probability: float) -> RiskBand:
        if probability >= self.high:
            return RiskBand.HIGH
        if probability >= self.medium:
            return RiskBand.MEDIUM
        if probability >= self.low:
            return RiskBand.LOW
        return RiskBand.MINIMAL

    def relative(self, probability: float) -> float:
        """The probability as a multiple of the base rate (NaN when the base rate is unknown or zero)."""
        if not math.isfinite(self.base_rate) or self.base_rate <= 0.0:
            return float("nan")
        return probability / self.base_rate

    def bounds(self, band: RiskBand) -> tuple[float, float]:
        """The probabilities ``[lower, upper)`` of ``band`` (``high`` includes 1)."""
        cuts = (0.0, self.low, self.medium, self.high, 1.0)
        index = RISK_BANDS.index(RiskBand(band))
        return cuts[index], cuts[index + 1]

    def range_text(self, band: RiskBand) -> str:
        """``"probability from 0.100 to 0.200 (0.5x to 1x the base rate of 20.0%)"``, the base rate always
        named (``unknown`` without one)."""
        lower, upper = self.bounds(band)
        rate = f"{self.base_rate:.1%}" if math.isfinite(self.base_rate) else "unknown"
        if band is RiskBand.HIGH:
            span, times = f"at or above {cut_text(lower)}", f"{_times(self.relative(lower))} or more"
        elif band is RiskBand.MINIMAL:
            span, times = f"below {cut_text(upper)}", f"under {_times(self.relative(upper))}"
        else:
            span = f"from {cut_text(lower)} to {cut_text(upper)}"
            times = f"{_times(self.relative(lower))} to {_times(self.relative(upper))}"
        if not math.isfinite(self.base_rate) or self.base_rate <= 0.0:
            return f"probability {span} (base rate {rate})"
        return f"probability {span} ({times} the base rate of {rate})"

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "low": self.low,
            "medium": self.medium,
            "high": self.high,
            "base_rate": self.base_rate if math.isfinite(self.base_rate) else None,
            "support": [s.as_dict() for s in self.support],
        }
        if self.low_derived:
            document["low_derived"] = True
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RiskBands:
        """The inverse of :meth:`as_dict` (how a saved model keeps its bands).

        A document of three bands (no ``low`` cut: a model saved before ``minimal`` existed) gets ``low`` at
        half its base rate (0 without one, so nothing is ``minimal``), marked ``low_derived``; its old ``low``
        support counted every example below the base rate, which no longer is one band, so it is left out.
        """
        rate = document.get("base_rate")
        base_rate = float("nan") if rate is None else float(rate)
        medium = float(document["medium"])
        support = tuple(
            BandSupport(RiskBand(item["band"]), int(item["examples"]), int(item["defects"]))
            for item in document.get("support", ())
        )
        if "low" in document:
            return cls(
                low=float(document["low"]),
                medium=medium,
                high=float(document["high"]),
                base_rate=base_rate,
                support=support,
                low_derived=bool(document.get("low_derived", False)),
            )
        low = min(LOW_MULTIPLE * base_rate, medium) if math.isfinite(base_rate) else 0.0
        return cls(
            low=low,
            medium=medium,
            high=float(document["high"]),
            base_rate=base_rate,
            support=tuple(s for s in support if s.band is not RiskBand.LOW),
            low_derived=True,
        )

    def describe(self) -> str:
        """One line for reports: the cuts as probabilities and as multiples of the base rate."""
        derived = " (derived: a model saved with three bands)" if self.low_derived else ""
        low, medium, high = cut_text(self.low), cut_text(self.medium), cut_text(self.high)
        if not math.isfinite(self.base_rate):
            return f"low from {low}{derived}, medium from {medium}, high from {high}"
        return (
            f"base rate {self.base_rate:.1%}; low from {low} ({_times(self.relative(self.low))})"
            f"{derived}, medium from {medium} ({_times(self.relative(self.medium))}), "
            f"high from {high} ({_times(self.relative(self.high))} the base rate)"
        )


def _times(multiple: float) -> str:
    return "n/a" if not math.isfinite(multiple) else f"{multiple:.2g}x"


#: Decimals of a probability or a cut as shown, unless more are needed to keep it beside its band right.
SHOWN_DECIMALS: Final = 3
_MOST_DECIMALS: Final = 17  # a float's full precision: past this a text cannot be any closer


def cut_text(cut: float) -> str:
    """A band cut as every surface shows it: rounded to 3 decimals, or to the fewest more at which the
    rounding does not fall below the cut (0.10484 reads "0.105", 0.41935 reads "0.4194").

    Why never below: a legend "low from 0.105" for a cut of 0.10516 would put a score of 0.1051, which is
    ``minimal``, at or above the cut the reader sees, and no number of digits on the score could fix that.
    A cut shown at or above its value leaves every score below it room to be shown below it
    (:func:`probability_text`).
    """
    for decimals in range(SHOWN_DECIMALS, _MOST_DECIMALS + 1):
        text = f"{cut:.{decimals}f}"
        if float(text) >= cut:
            return text
    return repr(cut)


def probability_text(probability: float, bands: RiskBands | None) -> str:
    """A score as every surface shows it beside its band and the cuts of ``bands`` (:func:`cut_text`): 3
    decimals, or the fewest more at which the shown score is at or above each shown cut exactly when the score
    is at or above the cut itself.

    Why: a score of 0.10476 is ``minimal`` under a cut of 0.10484, which reads "low from 0.105"; at 3 decimals
    the score reads "0.105 minimal" right beside it, a contradiction. It reads "0.1048" instead. A score that
    sits further from every cut than rounding keeps its 3 decimals.
    """
    if not math.isfinite(probability):
        return str(probability)
    cuts = () if bands is None else (bands.low, bands.medium, bands.high)
    shown = [(cut, float(cut_text(cut))) for cut in cuts]
    for decimals in range(SHOWN_DECIMALS, _MOST_DECIMALS + 1):
        text = f"{probability:.{decimals}f}"
        value = float(text)
        if all((value >= seen) == (probability >= cut) for cut, seen in shown):
            return text
    return repr(probability)


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
    """``"1.4x"`` for a relative risk, ``"<0.1x"`` below 0.1x (not a bare "0.0x"), ``"-"`` when unknown.

    The multiple is cut down to one decimal, never rounded up: the bands are cut at whole multiples of the
    base rate (1x, 2x), so a commit at 1.96x in the medium band must not read "2.0x medium"."""
    if not math.isfinite(multiple):
        return "-"
    tenths = math.floor(multiple * 10 + 1e-9)
    return "<0.1x" if tenths < 1 else f"{tenths / 10:.1f}x"


def relative_text(probability: float, bands: RiskBands) -> str:
    """``"1.4x the base rate of 12.0%"`` (or an empty string when the base rate is unknown)."""
    multiple = bands.relative(probability)
    if not math.isfinite(multiple):
        return ""
    return f"{multiple_text(multiple)} the base rate of {bands.base_rate:.1%}"


@dataclass(frozen=True)
class Reason:
    """A feature that raised (positive ``contribution``) or lowered the risk, in calibrated log-odds."""

    feature: str
    value: float
    contribution: float
    #: Where the value lies among the model's training commits: ``high`` above the 75th percentile, ``low``
    #: below the 25th, ``usual`` between, None when the model keeps no ranges. Words only (not in the API).
    level: str | None = field(default=None, compare=False)

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


def value_level(value: float, typical: Sequence[float] | None) -> str | None:
    """``high``/``low``/``usual`` against a ``[25th, 75th percentile]`` range; None without one."""
    if typical is None or len(typical) != 2 or not math.isfinite(value):
        return None
    if value > typical[1]:
        return "high"
    if value < typical[0]:
        return "low"
    return "usual"


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
    ranges = getattr(model, "typical_", None)
    typical: Mapping[str, Sequence[float]] = ranges if isinstance(ranges, Mapping) else {}
    results: list[Scored] = []
    for i, explanation in enumerate(explanations):
        probability = float(explanation.probability)
        reasons = tuple(
            Reason(
                c.feature,
                float(c.value),
                float(c.contribution),
                level=value_level(float(c.value), typical.get(c.feature)),
            )
            for c in explanation.contributions
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
