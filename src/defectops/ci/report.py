"""The result of ``defectops predict``: scored commits with what they changed, ready for every output format.

``--fail-on`` decides whether the run fails CI. It exits with :data:`RISK_EXIT_CODE` (10), a code no other
defectops error uses, so a workflow can tell "risky commits found" from "predict could not run":

* ``high``: some commit is in the high band;
* ``medium``: some commit is in the medium or high band (``low`` and ``minimal``, below the base rate, never
  fail a run by band);
* ``any``: some commit is flagged risky, i.e. its probability reaches ``--threshold`` (the model's decision
  threshold unless given), whatever its band.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from defectops.ci.block_report import BlockPrediction
from defectops.ci.changes import ChangedFile, CommitInfo
from defectops.ci.model_source import ModelSource
from defectops.ci.reasons import describe
from defectops.errors import DefectOpsError, InputError
from defectops.training import RISK_BANDS, RiskBand, Scored, cut_text

#: Exit code of ``predict --fail-on`` when a commit reached the band (distinct from every error's code).
RISK_EXIT_CODE = 10


_E = TypeVar("_E", bound=StrEnum)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    GITHUB = "github"


class FailOn(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    ANY = "any"


def parse_choice(enum: type[_E], value: str, option: str) -> _E:
    """A one-line InputError (not a usage dump) for a value outside the choices."""
    try:
        return enum(value.strip().lower())
    except ValueError:
        choices = "|".join(member.value for member in enum)
        raise InputError(f"{option} {value!r} is not one of {choices}") from None


class RiskFoundError(DefectOpsError):
    """``--fail-on`` matched: at least one commit reached the band (the report was printed already)."""

    exit_code = RISK_EXIT_CODE


@dataclass(frozen=True)
class CommitPrediction:
    """One scored commit: the shared scoring result plus what the commit is and changed."""

    scored: Scored
    info: CommitInfo
    features: dict[str, float]
    #: Why this commit's metrics may be off (e.g. history between the miner state and the clone missing).
    notes: tuple[str, ...] = ()
    #: The commit's mined row (every change metric, its times and message), for ``predict --store``.
    metrics: dict[str, Any] = field(default_factory=dict)
    #: The commit's added and changed Terraform blocks scored by the block-level model (#17), riskiest first.
    blocks: tuple[BlockPrediction, ...] = ()

    @property
    def sha(self) -> str:
        return self.info.sha

    @property
    def short_sha(self) -> str:
        return self.info.sha[:12]

    @property
    def band(self) -> RiskBand:
        return self.scored.band

    @property
    def reasons_text(self) -> list[str]:
        return [describe(r) for r in self.scored.reasons]

    def hotspots(self) -> tuple[ChangedFile, ...]:
        return self.info.hotspots()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.scored.as_dict(),
            "sha": self.sha,
            "subject": self.info.subject,
            "author_name": self.info.author_name,
            "author_email": self.info.author_email,
            "reasons_text": self.reasons_text,
            "features": self.features,
            "files": [f.as_dict() for f in self.info.files],
            "notes": list(self.notes),
            **({"blocks": [b.as_dict() for b in self.blocks]} if self.blocks else {}),
        }


def reaches(prediction: CommitPrediction, fail_on: FailOn) -> bool:
    """Whether one commit meets the ``--fail-on`` condition."""
    if fail_on is FailOn.HIGH:
        return prediction.band is RiskBand.HIGH
    if fail_on is FailOn.MEDIUM:
        return prediction.band in (RiskBand.MEDIUM, RiskBand.HIGH)
    return prediction.scored.risk


@dataclass(frozen=True)
class PredictionReport:
    """Everything one ``predict`` run found, in the order the commits were made."""

    repo: str
    revisions: tuple[str, ...]
    model: ModelSource
    threshold: float
    commits: tuple[CommitPrediction, ...]
    skipped_merges: tuple[str, ...] = ()
    fail_on: FailOn | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Commits per band, every band present, the riskiest first (``high``, ``medium``, ``low``,
        ``minimal``)."""
        counter = Counter(c.band.value for c in self.commits)
        return {band.value: counter.get(band.value, 0) for band in reversed(RISK_BANDS)}

    def counts_text(self) -> str:
        """``"1 high, 0 medium, 2 low, 1 minimal"``."""
        return ", ".join(f"{count} {band}" for band, count in self.counts().items())

    def fail_condition(self) -> str:
        """What ``--fail-on`` asks of a commit, in words (empty without it)."""
        if self.fail_on is FailOn.HIGH:
            return f"in the high band (probability at or above {cut_text(self.model.bands.high)})"
        if self.fail_on is FailOn.MEDIUM:
            return f"in the medium or high band (probability at or above {cut_text(self.model.bands.medium)})"
        if self.fail_on is FailOn.ANY:
            return f"flagged risky (probability at or above the threshold {self.threshold:.3f})"
        return ""

    def failing(self) -> list[CommitPrediction]:
        """The commits that meet ``--fail-on`` (none without it)."""
        if self.fail_on is None:
            return []
        return [c for c in self.commits if reaches(c, self.fail_on)]

    def as_dict(self) -> dict[str, Any]:
        failing = self.failing()
        return {
            "repo": self.repo,
            "revisions": list(self.revisions),
            "model": self.model.describe(),
            "threshold": self.threshold,
            "counts": self.counts(),
            "commits": [c.as_dict() for c in self.commits],
            "skipped_merges": list(self.skipped_merges),
            "fail_on": None if self.fail_on is None else self.fail_on.value,
            "failed": bool(failing),
            "failing_commits": [c.sha for c in failing],
            "notes": list(self.notes),
        }
