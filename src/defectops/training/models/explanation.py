"""Explanations of single predictions: exact per-feature terms in calibrated log-odds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Contribution:
    """One term of an explanation: a feature, its value for this change, and how much it moved the risk
    (in calibrated log-odds; positive raises the risk)."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why one change got its probability: ``logit(probability) = base + sum of all contributions``; the
    ``top_k`` largest by magnitude are listed (``rest`` sums the others)."""

    probability: float
    base: float
    contributions: tuple[Contribution, ...]
    rest: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "base": self.base,
            "rest": self.rest,
            "contributions": [
                {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                for c in self.contributions
            ],
        }
