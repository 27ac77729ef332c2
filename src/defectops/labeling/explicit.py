"""Explicit links between a fix and the commit it repairs, written by the developers themselves.

Why trust them without blame: ``Fixes: <sha>`` (the Linux kernel convention, used by many C projects),
``Regressed-by: <sha>`` and git's own revert message (``This reverts commit <sha>.``) name the defect-inducing
commit directly. They are the highest-confidence labels a repository has; blame can only approximate them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_TRAILER = re.compile(
    r"^[ \t]*(fixes|regressed-by)[ \t]*:[ \t]*(?:commit[ \t]+)?([0-9a-f]{7,40})\b",
    re.IGNORECASE | re.MULTILINE,
)
_REVERT = re.compile(r"this\s+reverts\s+(?:commit\s+)?([0-9a-f]{7,40})\b", re.IGNORECASE)

EVIDENCE = {"fixes": "fixes-trailer", "regressed-by": "regressed-by-trailer", "revert": "revert"}


@dataclass(frozen=True, slots=True)
class ExplicitRef:
    """A reference found in a message: the kind (``fixes``, ``regressed-by``, ``revert``) and the sha
    prefix."""

    kind: str
    prefix: str

    @property
    def evidence(self) -> str:
        return EVIDENCE[self.kind]


def explicit_refs(message: str) -> list[ExplicitRef]:
    """All explicit links of a message, in order, without duplicates."""
    found: list[ExplicitRef] = []
    for match in _TRAILER.finditer(message):
        found.append(ExplicitRef(match.group(1).lower(), match.group(2).lower()))
    for match in _REVERT.finditer(message):
        found.append(ExplicitRef("revert", match.group(1).lower()))
    unique: list[ExplicitRef] = []
    for ref in found:
        if ref not in unique:
            unique.append(ref)
    return unique


class ShaIndex:
    """Resolves abbreviated shas against the commits of the history (unique prefix or nothing)."""

    def __init__(self, shas: Iterable[str]) -> None:
        self._sorted = sorted(set(shas))

    def resolve(self, prefix: str) -> str | None:
        """The full sha starting with ``prefix``; ``None`` when none or several commits match."""
        prefix = prefix.lower()
        pos = bisect.bisect_left(self._sorted, prefix)
        if pos >= len(self._sorted) or not self._sorted[pos].startswith(prefix):
            return None
        if pos + 1 < len(self._sorted) and self._sorted[pos + 1].startswith(prefix):
            return None
        return self._sorted[pos]


@dataclass(frozen=True, slots=True)
class ExplicitLink:
    """A resolved explicit link (``inducing`` is None when the sha is unknown or ambiguous in this
    history)."""

    fix: str
    inducing: str | None
    reference: str
    evidence: str


def resolve_explicit(fix_sha: str, refs: Sequence[ExplicitRef], index: ShaIndex) -> list[ExplicitLink]:
    """Resolve the references of one commit; a reference to the commit itself is ignored."""
    links: list[ExplicitLink] = []
    for ref in refs:
        full = index.resolve(ref.prefix)
        if full == fix_sha:
            continue
        links.append(ExplicitLink(fix=fix_sha, inducing=full, reference=ref.prefix, evidence=ref.evidence))
    return links
