"""The 14 change metrics of Kamei et al. (TSE 2013) plus churn, computed from a running history.

The history (per file: who changed it and when; per developer: when they changed what) is updated commit by
commit in topological order. Scoring a commit reads the history *before* the commit; applying it updates the
history. The same code scores a commit in a full-history run and in just-in-time mode (where the history is
loaded from the stored state), so both produce identical values. Definitions are in docs/metrics.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from defectops.data import METRIC_NAMES, RICH_FEATURES
from defectops.git import ChangeType, Commit, FileChange
from defectops.mining.fixes import is_fix_message
from defectops.mining.paths import path_kind

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.25
_SECONDS_PER_YEAR = SECONDS_PER_DAY * DAYS_PER_YEAR
_SMALL = 48  # below this many prior changes REXP is summed in Python, above with numpy


@dataclass(slots=True)
class ChangeMetrics:
    """Kamei et al. 2013 metrics of one change (see docs/metrics.md for each definition)."""

    ns: int
    nd: int
    nf: int
    entropy: float
    la: int
    ld: int
    lt: int
    fix: bool
    ndev: int
    age: float
    nuc: int
    exp: int
    rexp: float
    sexp: int
    churn: int
    # Richer features (#20, docs/metrics.md "Richer features"), in RICH_FEATURES order.
    file_fixes: int = 0
    dir_fixes: int = 0
    rel_churn: float = 0.0
    src_churn: int = 0
    test_churn: int = 0
    doc_churn: int = 0
    build_churn: int = 0
    author_30d: int = 0
    author_90d: int = 0
    src_share: float = 0.0
    test_share: float = 0.0
    doc_share: float = 0.0
    build_share: float = 0.0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            **dict(zip(METRIC_NAMES, self.values(), strict=True)),
            **dict(zip(RICH_FEATURES, self.rich_values(), strict=True)),
        }

    def values(self) -> tuple[float | int | bool, ...]:
        """The metrics in :data:`METRIC_NAMES` order."""
        return (
            self.ns, self.nd, self.nf, self.entropy, self.la, self.ld, self.lt, self.fix,
            self.ndev, self.age, self.nuc, self.exp, self.rexp, self.sexp, self.churn,
        )  # fmt: skip

    def rich_values(self) -> tuple[float | int, ...]:
        """The richer features in :data:`RICH_FEATURES` order."""
        return (
            self.file_fixes, self.dir_fixes, self.rel_churn, self.src_churn, self.test_churn,
            self.doc_churn, self.build_churn, self.author_30d, self.author_90d,
            self.src_share, self.test_share, self.doc_share, self.build_share,
        )  # fmt: skip


@dataclass(slots=True)
class FileHistory:
    """What the history knows about one path: developers who changed it, its last change, and how many
    fix commits changed it (``fixes``, for ``file_fixes``)."""

    developers: set[str]
    last_time: float  # author time, seconds since the epoch
    last_sha: str
    fixes: int = 0


@dataclass(slots=True)
class DeveloperHistory:
    """A developer's prior changes: times (for REXP) and subsystem sets with counts (for SEXP)."""

    times: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    count: int = 0
    subsystem_sets: Counter[frozenset[str]] = field(default_factory=Counter)

    def add(self, when: float, subsystems: frozenset[str]) -> None:
        if self.count == len(self.times):
            grown = np.empty(max(8, 2 * len(self.times)), dtype=np.float64)
            grown[: self.count] = self.times[: self.count]
            self.times = grown
        self.times[self.count] = when
        self.count += 1
        self.subsystem_sets[subsystems] += 1

    def recent_experience(self, now: float) -> float:
        """REXP: sum over prior changes of 1 / (1 + age in years); ages below zero count as zero."""
        if self.count == 0:
            return 0.0
        if self.count <= _SMALL:
            # Few changes: plain Python is several times faster than numpy's per-call overhead.
            return math.fsum(
                1.0 / (1.0 + max(now - t, 0.0) / _SECONDS_PER_YEAR) for t in self.times[: self.count].tolist()
            )
        ages = np.maximum(now - self.times[: self.count], 0.0) / _SECONDS_PER_YEAR
        return float(np.sum(1.0 / (1.0 + ages)))

    def recent_count(self, now: float, days: float) -> int:
        """Prior changes younger than ``days`` at ``now`` (``author_30d``/``author_90d``); a prior change
        dated after ``now`` (clock skew) has age zero, as in REXP, so it counts."""
        if self.count == 0:
            return 0
        cutoff = now - days * SECONDS_PER_DAY
        if self.count <= _SMALL:
            return sum(1 for t in self.times[: self.count].tolist() if t > cutoff)
        return int(np.count_nonzero(self.times[: self.count] > cutoff))

    def subsystem_experience(self, subsystems: frozenset[str]) -> int:
        """SEXP: prior changes that touched at least one of ``subsystems`` (each change counted once)."""
        return sum(n for seen, n in self.subsystem_sets.items() if not seen.isdisjoint(subsystems))


def subsystem_of(path: str) -> str:
    """The root directory of a path; files at the repository root belong to the root subsystem ''."""
    head, sep, _ = path.partition("/")
    return head if sep else ""


def directory_of(path: str) -> str:
    """The directory of a path ('' for the repository root); git paths have no leading, trailing or
    doubled slashes, so this equals ``posixpath.dirname`` at a third of its cost."""
    return path.rpartition("/")[0]


def scored_files(commit: Commit) -> list[FileChange]:
    """Files that count for the metrics: everything but submodule pointer updates."""
    return [f for f in commit.files if not f.is_submodule]


def entropy_of(churns: Iterable[int]) -> float:
    """Shannon entropy (base 2) of the distribution of changed lines over files; 0 when nothing changed."""
    values = [c for c in churns if c > 0]
    total = sum(values)
    if total == 0:
        return 0.0
    return -sum((c / total) * math.log2(c / total) for c in values) + 0.0


LineCounter = Callable[[FileChange], int]


class HistoryState:
    """The running history the metrics are computed from.

    ``file_loader`` and ``developer_loader`` let a stored state supply entries on demand (just-in-time mode);
    a full-history run starts empty and needs neither.
    """

    def __init__(
        self,
        files: dict[str, FileHistory] | None = None,
        developers: dict[str, DeveloperHistory] | None = None,
        file_loader: Callable[[str], FileHistory | None] | None = None,
        developer_loader: Callable[[str], DeveloperHistory | None] | None = None,
        directories: dict[str, int] | None = None,
        directory_loader: Callable[[str], int | None] | None = None,
    ) -> None:
        self.files: dict[str, FileHistory] = files if files is not None else {}
        self.developers: dict[str, DeveloperHistory] = developers if developers is not None else {}
        #: Per directory ('' for the root): fix commits that changed a file in it (``dir_fixes``).
        self.directories: dict[str, int] = directories if directories is not None else {}
        self._file_loader = file_loader
        self._developer_loader = developer_loader
        self._directory_loader = directory_loader
        self._missing_files: set[str] = set()

    # -- lookups ---------------------------------------------------------------------------------------

    def file(self, path: str) -> FileHistory | None:
        found = self.files.get(path)
        if found is None and self._file_loader is not None and path not in self._missing_files:
            found = self._file_loader(path)
            if found is None:
                self._missing_files.add(path)
            else:
                self.files[path] = found
        return found

    def directory_fixes(self, directory: str) -> int:
        found = self.directories.get(directory)
        if found is None:
            loaded = self._directory_loader(directory) if self._directory_loader is not None else None
            found = loaded or 0
            self.directories[directory] = found
        return found

    def developer(self, email: str) -> DeveloperHistory:
        found = self.developers.get(email)
        if found is None:
            loaded = self._developer_loader(email) if self._developer_loader is not None else None
            found = loaded if loaded is not None else DeveloperHistory()
            self.developers[email] = found
        return found

    # -- scoring ---------------------------------------------------------------------------------------

    def score(self, commit: Commit, lines_before: LineCounter) -> ChangeMetrics:
        """The metrics of ``commit`` given everything applied so far (the commit itself not yet)."""
        files = scored_files(commit)
        return self._score(commit, files, frozenset(subsystem_of(f.path) for f in files), lines_before)

    def score_and_apply(
        self, commit: Commit, lines_before: LineCounter, record: Callable[[FileChange, int], None]
    ) -> ChangeMetrics:
        """:meth:`score` then :meth:`apply` in one pass (the miner's hot path); ``record`` learns each
        file's size before the change, to remember the size of the version it produced."""
        files = scored_files(commit)
        subsystems = frozenset(subsystem_of(f.path) for f in files)
        metrics = self._score(commit, files, subsystems, lines_before, record)
        self._apply(commit, files, subsystems, metrics.fix)
        return metrics

    def _score(
        self,
        commit: Commit,
        files: list[FileChange],
        subsystems: frozenset[str],
        lines_before: LineCounter,
        record: Callable[[FileChange, int], None] | None = None,
    ) -> ChangeMetrics:
        """Every metric in one pass over the files (``record`` also learns each file's size before)."""
        now = commit.author_time.timestamp()
        directories = {directory_of(f.path) for f in files}
        la = ld = lt = 0
        churns: list[int] = []
        developers: set[str] = set()
        ages: list[float] = []
        last_changes: set[str] = set()
        file_fixes = 0
        kinds = {"source": 0, "test": 0, "docs": 0, "build": 0, "other": 0}
        for f in files:
            la += f.added
            ld += f.deleted
            churns.append(f.added + f.deleted)
            kinds[path_kind(f.path)] += f.added + f.deleted
            before = lines_before(f)
            if f.change_type is not ChangeType.ADDED and not f.binary:
                lt += before
            if record is not None:
                record(f, before)
            history = self.file(self._history_path(f))
            if history is None:
                continue
            developers |= history.developers
            ages.append(max(now - history.last_time, 0.0) / SECONDS_PER_DAY)
            last_changes.add(history.last_sha)
            file_fixes += history.fixes

        author = self.developer(commit.author_email)
        return ChangeMetrics(
            ns=len(subsystems),
            nd=len(directories),
            nf=len(files),
            entropy=entropy_of(churns),
            la=la,
            ld=ld,
            lt=lt,
            fix=is_fix_message(commit.message),
            ndev=len(developers),
            age=sum(ages) / len(ages) if ages else 0.0,
            nuc=len(last_changes),
            exp=author.count,
            rexp=author.recent_experience(now),
            sexp=author.subsystem_experience(subsystems),
            churn=la + ld,
            file_fixes=file_fixes,
            dir_fixes=sum(self.directory_fixes(d) for d in directories),
            rel_churn=(la + ld) / max(lt, 1),
            src_churn=kinds["source"],
            test_churn=kinds["test"],
            doc_churn=kinds["docs"],
            build_churn=kinds["build"],
            author_30d=author.recent_count(now, 30.0),
            author_90d=author.recent_count(now, 90.0),
            # Each kind's share of the churn: max(la + ld, 1) keeps a change without changed lines at 0.
            src_share=kinds["source"] / max(la + ld, 1),
            test_share=kinds["test"] / max(la + ld, 1),
            doc_share=kinds["docs"] / max(la + ld, 1),
            build_share=kinds["build"] / max(la + ld, 1),
        )

    @staticmethod
    def _history_path(change: FileChange) -> str:
        """Renames and copies continue the history of the path they came from."""
        if change.change_type in (ChangeType.RENAMED, ChangeType.COPIED) and change.old_path:
            return change.old_path
        return change.path

    # -- updating --------------------------------------------------------------------------------------

    def apply(self, commit: Commit) -> None:
        """Add ``commit`` to the history (merges are not applied: their changes arrive with their commits)."""
        if commit.is_merge:
            return
        files = scored_files(commit)
        subsystems = frozenset(subsystem_of(f.path) for f in files)
        self._apply(commit, files, subsystems, is_fix_message(commit.message))

    def _apply(self, commit: Commit, files: list[FileChange], subsystems: frozenset[str], fix: bool) -> None:
        now = commit.author_time.timestamp()
        author = commit.author_email
        if fix:
            for directory in {directory_of(f.path) for f in files}:
                self.directories[directory] = self.directory_fixes(directory) + 1
        for f in files:
            source = self._history_path(f)
            history = self.file(source)
            if f.change_type is ChangeType.RENAMED:
                self.files.pop(source, None)
                self._missing_files.add(source)
            if f.change_type is ChangeType.DELETED:
                # A deleted path's history ends; a file re-added later starts a new one.
                self.files.pop(f.path, None)
                self._missing_files.add(f.path)
                continue
            if f.change_type is ChangeType.COPIED and history is not None:
                history = FileHistory(
                    set(history.developers), history.last_time, history.last_sha, history.fixes
                )
            if history is None:
                history = FileHistory(set(), now, commit.sha)
            history.developers.add(author)
            if fix:
                history.fixes += 1
            history.last_time = now
            history.last_sha = commit.sha
            self.files[f.path] = history
            self._missing_files.discard(f.path)
        self.developer(author).add(now, subsystems)
