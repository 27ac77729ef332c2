"""The text a hybrid model reads, attached to the mined commits for ``run`` and ``heal`` (#20).

The mined commit dataset keeps each commit's message but not its changed lines (the code itself, and large).
Before a hybrid model is trained, evaluated, gated or scores the recent commits, :func:`attach_text` reads
the changed lines (:func:`defectops.git.changed_lines`: one ``git log --no-walk --stdin -p -U0`` process for
all of them, each text bounded) of exactly the commits that need them: the non-merge commits whose label is
known at ``now`` (every row of the training table and of the held-out window at ``now`` or earlier, since a
label once known stays known) and the few more that are scored. They become the ``diff`` column, which
:func:`defectops.data.training_table` carries into the training table; every other commit gets ``""``.

Nothing here is stored: the changed lines live in memory for one job and are never written to the workspace,
the registry's reference snapshot or input example, or the prediction log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from defectops.data import DIFF
from defectops.git import GitRepo, changed_lines
from defectops.training import known_labels, require_encoder

#: The model kinds that read each commit's changed lines.
TEXT_KINDS: tuple[str, ...] = ("hybrid",)


@dataclass(frozen=True, slots=True)
class TextStage:
    """What :func:`attach_text` read: ``commits`` texts, ``chars`` characters of them in all, in
    ``seconds`` (``text`` in ``run --json``)."""

    commits: int
    chars: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"commits": self.commits, "chars": self.chars, "seconds": round(self.seconds, 3)}


def reads_text(kind: str | None) -> bool:
    """Whether a model of ``kind`` reads each commit's changed lines."""
    return kind in TEXT_KINDS


def require_text_model(kind: str) -> None:
    """One ConfigError line (which extra to install) when ``kind`` needs the hybrid extra and it is missing:
    checked before any mining, which can take minutes."""
    if reads_text(kind):
        require_encoder()


def text_shas(commits: pd.DataFrame, labels: pd.DataFrame, now: datetime) -> list[str]:
    """The non-merge commits of ``commits`` whose verdict is known at ``now``, in the commits' order."""
    known_shas = set(known_labels(labels, now)["sha"].astype(str))
    scored = commits.loc[~commits["is_merge"].astype(bool), "sha"].astype(str)
    return [sha for sha in scored if sha in known_shas]


def attach_text(
    repo: GitRepo,
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    now: datetime,
    also: Iterable[str] = (),
) -> tuple[pd.DataFrame, TextStage]:
    """A copy of ``commits`` with the ``diff`` column: the changed lines of the commits whose label is known
    at ``now`` and of ``also`` (e.g. the recent commits to score), ``""`` for the rest."""
    began = time.monotonic()
    wanted = list(dict.fromkeys([*text_shas(commits, labels, now), *(str(s) for s in also)]))
    texts = changed_lines(repo, wanted)
    out = commits.copy()
    out[DIFF] = [texts.get(sha, "") for sha in out["sha"].astype(str)]
    stage = TextStage(
        commits=len(wanted),
        chars=sum(len(texts.get(sha, "")) for sha in wanted),
        seconds=time.monotonic() - began,
    )
    return out, stage


def recent_shas(commits: pd.DataFrame, count: int) -> list[str]:
    """The ``count`` latest non-merge commits (the ones ``run`` scores and reports)."""
    if count <= 0:
        return []
    return commits.loc[~commits["is_merge"].astype(bool), "sha"].astype(str).tail(count).tolist()
