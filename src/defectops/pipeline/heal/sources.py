"""Where the history challengers learn from comes from: a repository mined and labelled incrementally each
cycle (:class:`RepositorySource`), or a history held in memory and revealed as time passes
(:class:`FrameSource`, for replays and tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from defectops.data import VERDICT, upgrade_labels


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What a refresh saw (evidence of the ``refresh`` record): the commits, and for a repository the new
    ones, its head and the labels per verdict."""

    commits: int
    new_commits: int | None = None
    head: str | None = None
    labels: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.new_commits is not None:
            document["new_commits"] = self.new_commits
        document["commits"] = self.commits
        if self.head is not None:
            document["head"] = self.head
        if self.labels is not None:
            document["labels"] = dict(self.labels)
        return document


@dataclass(frozen=True)
class History:
    """Mined commits and their labels as known now, in the layouts ``training_table`` reads; ``summary`` is
    what the refresh saw (None: nothing to report)."""

    commits: pd.DataFrame
    labels: pd.DataFrame
    files: pd.DataFrame | None
    fingerprint: str | Mapping[str, Any]
    summary: HistorySummary | None = None


class HistorySource(Protocol):
    """Brings the history up to ``now`` (e.g. mines and labels new commits)."""

    def refresh(self, now: datetime) -> History: ...


@dataclass
class RepositorySource:
    """A git repository, mined and labelled incrementally into the workspace."""

    repo: Path
    workspace_root: Path
    waiting_days: int = 90
    workers: int | None = None

    def refresh(self, now: datetime) -> History:
        from defectops.config import Workspace
        from defectops.data import read_fingerprint, read_table
        from defectops.git import GitRepo
        from defectops.labeling import LabelOptions, label_repository
        from defectops.mining import (
            MineOptions,
            Miner,
            code_dataset_paths,
            mine_code_metrics,
            read_code_metrics,
            with_code_metrics,
        )

        workspace = Workspace(self.workspace_root).ensure()
        repo = GitRepo.open(self.repo)
        options = MineOptions(workers=self.workers) if self.workers else MineOptions()
        miner = Miner(repo, workspace, options, now=lambda: now)
        mined = miner.mine()
        commits = read_table(mined.dataset)
        if code_dataset_paths(miner)[0].exists():
            # A model of this repository uses code or Terraform metrics (`run --features`): keep them current
            # (only new commits are measured) so a challenger can learn from the same inputs.
            mine_code_metrics(miner)
            commits = with_code_metrics(commits, read_code_metrics(miner))
        labelled = label_repository(
            repo, workspace, now=now, options=LabelOptions(waiting_days=self.waiting_days)
        )
        fingerprint = read_fingerprint(mined.dataset)
        return History(
            commits=commits,
            labels=labelled.labels,
            files=read_table(mined.files_dataset),
            fingerprint=fingerprint.as_dict() if fingerprint else str(mined.dataset),
            summary=HistorySummary(
                new_commits=mined.new_commits,
                commits=mined.commits,
                head=mined.head,
                labels=labelled.summary.labels,
            ),
        )


@dataclass
class FrameSource:
    """A history held in memory (a replayed or published dataset): ``commits`` as mined, ``labels`` with
    ``label_known_at`` (see defectops.data.labels). ``training_table(as_of=now)`` sees only what was
    known at ``now``, so a complete history can be replayed cycle by cycle. A labels table whose verdict
    column has its old name (``label``) is renamed."""

    commits: pd.DataFrame
    labels: pd.DataFrame
    files: pd.DataFrame | None = None
    name: str = "frames"

    def __post_init__(self) -> None:
        self.labels = upgrade_labels(self.labels)

    def refresh(self, now: datetime) -> History:
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.commits[["sha"]], index=False).to_numpy().tobytes())
        digest.update(
            pd.util.hash_pandas_object(self.labels[["sha", VERDICT]], index=False).to_numpy().tobytes()
        )
        visible = pd.to_datetime(self.commits["author_time"], utc=True) <= pd.Timestamp(now)
        return History(
            commits=self.commits,
            labels=self.labels,
            files=self.files,
            fingerprint={
                "source": self.name,
                "rows": len(self.commits),
                "content_sha256": digest.hexdigest(),
            },
            summary=HistorySummary(commits=int(visible.sum())),
        )
