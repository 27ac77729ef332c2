"""Where the history challengers learn from comes from: a repository mined and labelled incrementally each
cycle (:class:`RepositorySource`), the commits CI scored into an artifact store, labelled from the repository
(:class:`StoreSource`, ``heal --store``), or a history held in memory and revealed as time passes
(:class:`FrameSource`, for replays and tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from defectops.data import VERDICT, upgrade_labels

if TYPE_CHECKING:
    from defectops.storage import ArtifactStore


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
    #: The SZZ links of the labels (a repository's; None when the source does not keep them), which the
    #: block-level model's labels are placed from.
    links: pd.DataFrame | None = None


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
            links=labelled.links,
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


#: Gives the labels table (with ``label_known_at``) as known at a moment.
LabelsAt = Callable[[datetime], pd.DataFrame]


def repository_labels(repo: Path, workspace_root: Path, waiting_days: int) -> LabelsAt:
    """Labels of a repository's commits as known at ``now`` (SZZ on its history, incremental)."""

    def labels_at(now: datetime) -> pd.DataFrame:
        from defectops.config import Workspace
        from defectops.git import GitRepo
        from defectops.labeling import LabelOptions, label_repository

        workspace = Workspace(workspace_root).ensure()
        options = LabelOptions(waiting_days=waiting_days)
        return label_repository(GitRepo.open(repo), workspace, now=now, options=options).labels

    return labels_at


@dataclass
class StoreSource:
    """The commits CI scored into an artifact store (``metrics/metrics_history.csv``, written by
    ``predict --store``), with the metrics they were scored with, labelled by ``labels_at``.

    Why these and not a fresh mining: they are the commits the champion scored just in time, after it was
    trained, so once their labels mature an online update can learn them and be gated on commits the
    champion never saw. Rows scored with approximate history metrics (``exact`` 0) are left out; a commit
    scored twice counts once (its latest row).
    """

    store: ArtifactStore
    labels_at: LabelsAt

    def refresh(self, now: datetime) -> History:
        from defectops.data import METRIC_NAMES
        from defectops.errors import InsufficientDataError

        rows = self.store.read_metrics_history()
        if rows.empty:
            raise InsufficientDataError(
                f"{self.store.url} has no metrics/metrics_history.csv yet: nothing was scored with "
                "predict --store"
            )
        rows = rows.loc[rows["exact"].astype(int) == 1].drop_duplicates("sha", keep="last")
        commits = pd.DataFrame(
            {
                "sha": rows["sha"].astype(str),
                "is_merge": rows["is_merge"].astype(str).str.lower().eq("true"),
                "author_time": pd.to_datetime(rows["author_time"], utc=True, format="ISO8601"),
                "message": rows["message"].fillna("").astype(str),
                **{
                    name: pd.to_numeric(rows[name].astype(str).replace({"True": "1", "False": "0"}))
                    for name in METRIC_NAMES
                },
            }
        ).reset_index(drop=True)
        paths = rows["paths"].fillna("").astype(str).str.split("\n")
        files = pd.DataFrame({"sha": rows["sha"].astype(str), "path": paths}).explode("path").dropna()
        files = files.loc[files["path"] != ""].reset_index(drop=True)
        labels = upgrade_labels(self.labels_at(now))
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(commits[["sha"]], index=False).to_numpy().tobytes()
        )
        return History(
            commits=commits,
            labels=labels,
            files=files,
            fingerprint={
                "source": self.store.url,
                "rows": len(commits),
                "content_sha256": digest.hexdigest(),
            },
            summary=HistorySummary(
                commits=len(commits),
                labels={str(k): int(v) for k, v in labels[VERDICT].value_counts().items()},
            ),
        )
