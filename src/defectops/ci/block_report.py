"""The block-level part of a CI prediction (#17): the risk of each Terraform block a commit added or
changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from defectops.ci.reasons import describe
from defectops.training import RiskBand, Scored, multiple_text


@dataclass(frozen=True, slots=True)
class BlockPrediction:
    """One changed block of one commit, scored by the block-level model; ``first_line``/``last_line`` are its
    lines after the commit. ``predict`` reports it and ``serve`` answers it (``POST /v1/commits/score``)."""

    path: str
    address: str
    change: str
    first_line: int
    last_line: int
    scored: Scored
    #: The block features it was scored with (what the service logs; not part of the report).
    inputs: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def band(self) -> RiskBand:
        return self.scored.band

    def headline(self) -> str:
        """``module.eks_managed_node_group changed: risk high (0.612, 2.4x the block base rate of 25.0%),
        because ...``: the base rate is the block model's (the share of defect-inducing blocks it learnt
        from), beside the band as for commits."""
        base, scored = self.scored.known_base_rate, self.scored
        times = multiple_text(scored.relative_risk)
        relative = f", {times} the block base rate of {base:.1%}" if base else ""
        text = f"{self.address} {self.change}: risk {self.band.value} ({scored.probability:.3f}{relative})"
        reasons = "; ".join(describe(r) for r in self.scored.reasons)
        return f"{text}, because {reasons}" if reasons else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "address": self.address,
            "change": self.change,
            "first_line": self.first_line,
            "last_line": self.last_line,
            **self.scored.as_dict(),
            "reasons_text": [describe(r) for r in self.scored.reasons],
        }
