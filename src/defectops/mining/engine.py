"""The mining engine: full history once, then incrementally, and just-in-time scoring of new commits.

Speed comes from git itself: the commit list is split into chunks that several ``git log --no-walk --stdin``
processes diff in parallel, while this process parses their output in order and updates the history.
No process is started per commit. Merge commits are recorded (one row, ``is_merge``) but not scored: their
changes are scored in the commits that made them.
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from defectops import __version__
from defectops.config import Workspace
from defectops.data import COMMITS_SCHEMA, FILES_SCHEMA, METRIC_NAMES, RICH_FEATURES, read_table, write_table
from defectops.errors import EmptyRepositoryError, ShallowCloneError, StateError
from defectops.git import BASE_OPTIONS, LOG_OPTIONS, BlobReader, Commit, GitRepo, LogParser
from defectops.locks import DEFAULT_WAIT_SECONDS, exclusive
from defectops.mining.identity import RepositoryIdentity, remote_of
from defectops.mining.jit import JitScores, plan_jit
from defectops.mining.lines import LineCounts
from defectops.mining.metrics import ChangeMetrics, HistoryState
from defectops.mining.state import StateInfo, StateStore

Progress = Callable[[int, int], None]

_INT_METRICS = ("ns", "nd", "nf", "la", "ld", "lt", "ndev", "nuc", "exp", "sexp", "churn")
_FLOAT_METRICS = ("entropy", "age", "rexp")
_FLOAT_RICH = ("rel_churn", "src_share", "test_share", "doc_share", "build_share")


@dataclass(frozen=True)
class MineOptions:
    """How to mine: which revision, from when, with how many git processes."""

    rev: str = "HEAD"
    since: datetime | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    allow_shallow: bool = False
    #: How long to wait for another process mining the same repository into the workspace.
    lock_wait_seconds: float = DEFAULT_WAIT_SECONDS


@dataclass
class MineResult:
    """What a mining run did."""

    repo: str
    repo_id: str
    rev: str
    head: str
    commits: int
    new_commits: int
    merges: int
    rebuilt: str | None
    dataset: Path
    files_dataset: Path
    seconds: float
    blobs_read: int

    @property
    def commits_per_second(self) -> float:
        return self.new_commits / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "repo_id": self.repo_id,
            "rev": self.rev,
            "head": self.head,
            "commits": self.commits,
            "new_commits": self.new_commits,
            "merges": self.merges,
            "rebuilt": self.rebuilt,
            "dataset": str(self.dataset),
            "files_dataset": str(self.files_dataset),
            "seconds": round(self.seconds, 3),
            "commits_per_second": round(self.commits_per_second, 1),
        }


COMMIT_COLUMNS: tuple[str, ...] = (
    "repo",
    "sha",
    "parents",
    "is_merge",
    "author_name",
    "author_email",
    "author_time",
    "committer_time",
    "message",
    *METRIC_NAMES,
    *RICH_FEATURES,
)
FILE_COLUMNS: tuple[str, ...] = (
    "repo",
    "sha",
    "path",
    "old_path",
    "change_type",
    "added",
    "deleted",
    "binary",
    "submodule",
)
_NO_METRICS: tuple[None, ...] = (None,) * (len(METRIC_NAMES) + len(RICH_FEATURES))


class _Rows:
    """Dataset rows as tuples, turned into columns once at the end (cheaper than a dict per row)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.commits: list[tuple[Any, ...]] = []
        self.files: list[tuple[Any, ...]] = []

    def add(self, commit: Commit, metrics: ChangeMetrics | None) -> None:
        self.commits.append(
            (
                self.repo,
                commit.sha,
                " ".join(commit.parents),
                commit.is_merge,
                commit.author_name,
                commit.author_email,
                commit.author_time,
                commit.committer_time,
                commit.message,
                *(_NO_METRICS if metrics is None else (*metrics.values(), *metrics.rich_values())),
            )
        )
        repo, sha = self.repo, commit.sha
        self.files.extend(
            (repo, sha, f.path, f.old_path, f.change_type.value, f.added, f.deleted, f.binary, f.is_submodule)
            for f in commit.files
        )

    def __len__(self) -> int:
        return len(self.commits)

    def clear(self) -> None:
        self.commits = []
        self.files = []

    def commit_frame(self) -> pd.DataFrame:
        return commits_frame(_columns(COMMIT_COLUMNS, self.commits))

    def file_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(_columns(FILE_COLUMNS, self.files))
        return frame.astype(
            {
                "repo": str,
                "sha": str,
                "path": str,
                "change_type": str,
                "added": "int64",
                "deleted": "int64",
                "binary": bool,
                "submodule": bool,
            }
        )


def _concat(parts: list[pd.DataFrame], empty: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty()
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep Python's cycle collector from rescanning the growing history while mining.

    The miner allocates millions of small, acyclic objects (commits, file changes, history entries), which
    trigger repeated full collections that find nothing to free (measured: about an eighth of the miner's
    own CPU time on numpy). Reference counting still frees everything; collection resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _columns(names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def commits_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """Typed commit table from column lists (metrics nullable: merges are not scored)."""
    frame = pd.DataFrame(columns)
    for name in ("author_time", "committer_time"):
        frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
    for name in _INT_METRICS:
        frame[name] = frame[name].astype("Int64")
    for name in _FLOAT_METRICS:
        frame[name] = frame[name].astype("float64")
    for name in RICH_FEATURES:
        frame[name] = frame[name].astype("float64" if name in _FLOAT_RICH else "Int64")
    frame["fix"] = frame["fix"].astype("boolean")
    frame["is_merge"] = frame["is_merge"].astype(bool)
    for name in ("repo", "sha", "parents", "author_name", "author_email", "message"):
        frame[name] = frame[name].astype(str)
    return frame


def _chunks(items: Sequence[str], workers: int) -> list[Sequence[str]]:
    """Contiguous chunks, two per worker and shrinking towards the end of history.

    This process parses and scores the chunks in order while git diffs the later ones; whatever is left
    after the last git process ends runs on one core, so the last chunks are the smallest. (Newer commits
    also tend to be larger, which evens out git's time per chunk.) Not more chunks: each git process starts
    with cold caches, which cost about 0.2 s of CPU per chunk on numpy.
    """
    if not items:
        return []
    count = max(1, min(math.ceil(len(items) / 1000), workers * 2))
    weights = list(range(count, 0, -1))
    total = sum(weights)
    chunks: list[Sequence[str]] = []
    start = 0
    for i, weight in enumerate(weights):
        end = len(items) if i == count - 1 else start + max(1, round(len(items) * weight / total))
        if start < end:
            chunks.append(items[start:end])
        start = end
    return chunks


class Miner:
    """Mine one repository into the workspace, keeping an incremental state there."""

    def __init__(
        self,
        repo: GitRepo,
        workspace: Workspace,
        options: MineOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.workspace = workspace
        self.options = options or MineOptions()
        self._now = now
        suffix = "" if self.options.rev == "HEAD" else "@" + _safe(self.options.rev)
        self.repo_id = repo.repo_id() + suffix
        self.store = StateStore(workspace.state_file(self.repo_id))

    # -- paths -----------------------------------------------------------------------------------------

    @property
    def dataset_path(self) -> Path:
        return self.workspace.dataset_file(self.repo_id, "commits")

    @property
    def files_dataset_path(self) -> Path:
        return self.workspace.dataset_file(self.repo_id, "files")

    # -- full and incremental mining ---------------------------------------------------------------------

    def _check_minable(self) -> str:
        if not self.repo.has_commits():
            raise EmptyRepositoryError(f"{self.repo.path}: the repository has no commits yet")
        head = self.repo.resolve(self.options.rev)
        if self.repo.is_shallow() and not self.options.allow_shallow:
            raise ShallowCloneError(
                f"{self.repo.path} is a shallow clone: history metrics (ndev, age, nuc, exp, rexp, sexp, lt) "
                "would be wrong. Fetch the full history (git fetch --unshallow), import a miner state "
                "(defectops state import), or mine it anyway with `defectops mine --allow-shallow`"
            )
        return head

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this repository's mining lock: one writer of its state and datasets at a time, across
        processes (a second ``mine`` waits, then finds the work done and reads 0 new commits)."""
        with exclusive(
            self.store.path.with_name(self.store.path.name + ".lock"),
            what=f"mining {self.repo_id}",
            wait_seconds=self.options.lock_wait_seconds,
        ):
            yield

    def mine(self, progress: Progress | None = None) -> MineResult:
        """Bring the workspace dataset and state up to the requested revision; only new commits are read."""
        with self.locked():
            return self._mine(progress)

    def _mine(self, progress: Progress | None) -> MineResult:
        started = perf_counter()
        head = self._check_minable()
        rebuilt: str | None = None
        if self.store.outdated():
            rebuilt = "the miner state was written by an older defectops; the state was rebuilt from scratch"
            self.store.delete()
        info = self.store.info()
        state: HistoryState
        exclude: list[str] = []
        if info is not None and info.head == head:
            return self._result(head, new=0, merges=0, rebuilt=None, started=started, blobs=0)
        if info is not None and self.repo.object_exists(info.head) and self.repo.is_ancestor(info.head, head):
            state = self.store.load()
            exclude = [f"^{info.head}"]
        else:
            if info is not None:
                rebuilt = (
                    f"history was rewritten: the last mined head {info.head[:12]} is no longer an ancestor "
                    f"of {head[:12]}; the state was rebuilt from scratch"
                )
            self.store.delete()
            for path in (self.dataset_path, self.files_dataset_path):
                path.unlink(missing_ok=True)
            info = None
            state = HistoryState()

        shas = self.repo.run("rev-list", "--topo-order", "--reverse", head, *exclude).decode().split()
        rows = _Rows(str(self.repo.path))
        commit_parts: list[pd.DataFrame] = []
        file_parts: list[pd.DataFrame] = []
        mined = 0
        merges = 0
        roots: list[str] = []
        head_time = info.head_time if info is not None else None
        with _gc_paused(), BlobReader(self.repo) as reader:
            counts = LineCounts(reader)
            for batch in self._stream(shas):
                counts.prefetch(batch)
                for commit in batch:
                    mined += 1
                    if not commit.parents:
                        roots.append(commit.sha)
                    if commit.sha == head:
                        head_time = commit.committer_time.timestamp()
                    if commit.is_merge:
                        merges += 1
                        rows.add(commit, None)
                    else:
                        rows.add(commit, score_and_apply(state, commit, counts))
                    if progress is not None:
                        progress(mined, len(shas))
                # Tables grow a chunk at a time while git still diffs the later chunks, so that little is
                # left to do once the last git process ends.
                commit_parts.append(rows.commit_frame())
                file_parts.append(rows.file_frame())
                rows.clear()
            blobs = counts.blobs_read

        now = self._now()
        # An imported state (a shallow CI clone's) has no dataset here: its count is carried forward.
        carried = 0 if info is None else info.commits
        if info is not None and self.dataset_path.exists():
            commit_parts.insert(0, read_table(self.dataset_path))
            file_parts.insert(0, read_table(self.files_dataset_path))
            carried = 0
        commits = _concat(commit_parts, rows.commit_frame)
        files = _concat(file_parts, rows.file_frame)
        source = str(self.repo.path)
        state_info = StateInfo(
            repo_path=source,
            branch=self.options.rev,
            head=head,
            commits=carried + len(commits),
            defectops_version=__version__,
            roots=self._roots(info, roots),
            remote=remote_of(self.repo),
            head_time=head_time,
        )
        # The two datasets and the state are independent files: written side by side (Parquet encoding,
        # compression and hashing release the GIL).
        with ThreadPoolExecutor(max_workers=3) as pool:
            writes: list[Future[Any]] = [
                pool.submit(
                    write_table, commits, self.dataset_path, schema=COMMITS_SCHEMA, what="commit dataset",
                    source=source, source_head=head, now=now,
                ),
                pool.submit(
                    write_table, files, self.files_dataset_path, schema=FILES_SCHEMA, what="file dataset",
                    source=source, source_head=head, now=now,
                ),
                pool.submit(self.store.save, state, state_info),
            ]  # fmt: skip
            for write in writes:
                write.result()
        return self._result(head, new=mined, merges=merges, rebuilt=rebuilt, started=started, blobs=blobs)

    def _roots(self, previous: StateInfo | None, seen: list[str]) -> tuple[str, ...]:
        """The root commits of the mined history: those seen now plus the earlier ones (unknown, so empty,
        on a shallow clone, whose oldest commits only look parentless, unless a state imported from a
        complete clone carries them)."""
        if self.repo.is_shallow():
            return previous.roots if previous is not None else ()
        if previous is None:
            return tuple(sorted(seen))
        if previous.roots:
            return tuple(sorted({*previous.roots, *seen}))
        return RepositoryIdentity.of(self.repo, self.options.rev).roots  # a state from an older version

    def _result(
        self, head: str, *, new: int, merges: int, rebuilt: str | None, started: float, blobs: int
    ) -> MineResult:
        info = self.store.info()
        return MineResult(
            repo=str(self.repo.path),
            repo_id=self.repo_id,
            rev=self.options.rev,
            head=head,
            commits=info.commits if info else 0,
            new_commits=new,
            merges=merges,
            rebuilt=rebuilt,
            dataset=self.dataset_path,
            files_dataset=self.files_dataset_path,
            seconds=perf_counter() - started,
            blobs_read=blobs,
        )

    def _stream(self, shas: Sequence[str]) -> Iterator[list[Commit]]:
        """Commits in the order of ``shas``, a chunk at a time, diffed by parallel git processes."""
        chunks = _chunks(shas, self.options.workers)
        if not chunks:
            return
        with ThreadPoolExecutor(max_workers=max(1, self.options.workers)) as pool:
            futures: list[Future[bytes]] = [pool.submit(self._log_chunk, chunk) for chunk in chunks]
            for future in futures:
                parser = LogParser()
                yield [*parser.feed(future.result()), *parser.close()]

    def _log_chunk(self, chunk: Sequence[str]) -> bytes:
        stdin = ("\n".join(chunk) + "\n").encode("ascii")
        return self.repo.run(*LOG_OPTIONS, "--no-walk=unsorted", "--stdin", stdin=stdin)

    # -- just-in-time scoring ----------------------------------------------------------------------------

    def score(self, revs: Sequence[str], progress: Progress | None = None) -> pd.DataFrame:
        """Metrics of the given commits (shas, or one ``BASE..HEAD`` range) from the stored state; see
        :meth:`score_jit` for the notes on commits whose history metrics are approximate."""
        return self.score_jit(revs, progress).metrics

    def score_jit(self, revs: Sequence[str], progress: Progress | None = None) -> JitScores:
        """Metrics of the given commits from the stored state, with a note on each commit whose history
        metrics are approximate.

        Commits the state already covers are read from the workspace dataset; the others are scored as a
        full-history run would score them, applying the commits between the state's head and them first.
        When the clone lacks the state's head (a shallow clone fetched less deeply than the state is old, or
        a rewritten history), the commits in between cannot be applied: the clone's commits newer than the
        state's head are applied, and each scored commit carries a note saying how much history is missing.
        The stored state is not changed.
        """
        info = self.store.info()
        if info is None:
            raise StateError(
                f"no miner state for {self.repo.path} in {self.workspace.root}; run `defectops mine` "
                "or `defectops state import` first"
            )
        targets = self._targets(revs)
        plan = plan_jit(self.repo, info, targets)
        covered = [sha for sha in targets if sha not in plan.unseen]
        fresh = [sha for sha in targets if sha in plan.unseen]
        frames: list[pd.DataFrame] = []
        if covered:
            if not self.dataset_path.exists():
                raise StateError(
                    f"{', '.join(s[:12] for s in covered)} already mined into the imported state, but this "
                    "workspace has no dataset with their metrics"
                )
            stored = read_table(self.dataset_path)
            frames.append(stored[stored["sha"].isin(covered)])
        if fresh:
            frames.append(self._score_fresh(fresh, plan.apply, progress))
        if not frames:
            return JitScores(_Rows(str(self.repo.path)).commit_frame(), {})
        result = pd.concat(frames, ignore_index=True)
        order = {sha: i for i, sha in enumerate(targets)}
        metrics = result.sort_values("sha", key=lambda s: s.map(order)).reset_index(drop=True)
        return JitScores(metrics, {sha: plan.notes[sha] for sha in fresh if sha in plan.notes})

    def _targets(self, revs: Sequence[str]) -> list[str]:
        targets: list[str] = []
        for rev in revs:
            if "..." in rev:  # git's symmetric difference was split at the first two dots ("unknown '.B'")
                from defectops.errors import InputError

                raise InputError(f"invalid range {rev!r}: use BASE..HEAD (two dots)")
            if ".." in rev:
                base, _, tip = rev.partition("..")
                if not base or not tip or base.startswith("-") or tip.startswith("-"):
                    from defectops.errors import InputError

                    raise InputError(f"invalid range {rev!r}; expected BASE..HEAD")
                listed = self.repo.run(
                    "rev-list",
                    "--topo-order",
                    "--reverse",
                    self.repo.resolve(tip),
                    f"^{self.repo.resolve(base)}",
                )
                targets.extend(listed.decode().split())
            else:
                targets.append(self.repo.resolve(rev))
        return list(dict.fromkeys(targets))

    def _score_fresh(self, fresh: list[str], needed: list[str], progress: Progress | None) -> pd.DataFrame:
        self._check_parents_present(fresh)
        wanted = set(fresh)
        rows = _Rows(str(self.repo.path))
        state, conn = self.store.lazy()
        try:
            with BlobReader(self.repo) as reader:
                counts = LineCounts(reader)
                stdin = ("\n".join(needed) + "\n").encode("ascii")
                parser = LogParser()
                output = self.repo.run(*LOG_OPTIONS, "--no-walk=unsorted", "--stdin", stdin=stdin)
                done = 0
                commits = [*parser.feed(output), *parser.close()]
                counts.prefetch(commits)
                for commit in commits:
                    metrics = None if commit.is_merge else score_and_apply(state, commit, counts)
                    if commit.sha in wanted:
                        rows.add(commit, metrics)
                        done += 1
                        if progress is not None:
                            progress(done, len(wanted))
        finally:
            conn.close()
        return rows.commit_frame()

    def _check_parents_present(self, shas: Sequence[str]) -> None:
        shallow_file = self.repo.git_dir / "shallow"
        if not shallow_file.exists():
            return
        boundary = set(shallow_file.read_text().split())
        for sha in shas:
            if sha in boundary:
                raise ShallowCloneError(
                    f"the parent of {sha[:12]} is not in this shallow clone, so its diff is unknown; "
                    "fetch at least one more commit of history (e.g. fetch-depth: 2, or 0 for all)"
                )


def score_and_apply(state: HistoryState, commit: Commit, counts: LineCounts) -> ChangeMetrics:
    """Score a non-merge commit against the history, then add it to the history and the line counts."""
    return state.score_and_apply(commit, counts.before, counts.record)


def _safe(rev: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rev)


def git_version() -> str:
    out = subprocess.run(["git", *BASE_OPTIONS, "--version"], capture_output=True, check=False).stdout
    return out.decode().strip()
