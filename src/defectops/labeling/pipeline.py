"""Label a repository: fixes, SZZ links and matured labels, stored in the workspace, incremental by default.

This is the one entry point other stages call (``defectops label`` and the main job): give it a repository, a
workspace and ``now``; it returns the labels and links as DataFrames and writes them as Parquet next to the
mining dataset (``Workspace.dataset_file(repo_id, "labels")`` / ``"links"``), joinable with it on ``sha``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from defectops import __version__
from defectops.config import Workspace
from defectops.data import (
    LINK_COLUMNS,
    compute_labels,
    empty_links,
    label_counts,
    upgrade_labels,
    validate_links,
)
from defectops.errors import DataError, GitError, InputError, ShallowCloneError
from defectops.git import GitRepo
from defectops.labeling.explicit import ExplicitLink, ExplicitRef, ShaIndex, explicit_refs, resolve_explicit
from defectops.labeling.history import CommitInfo, read_history
from defectops.labeling.issues import IssueList, decide
from defectops.labeling.lines import CommitNode, LineState, LineTracker, TrackResult
from defectops.labeling.state import StoredState, blame_loader, load_state, save_state, state_folder
from defectops.labeling.szz import FixReason, SzzOptions, SzzStats, build_links
from defectops.locks import DEFAULT_WAIT_SECONDS, exclusive, replace_atomically
from defectops.mining import FixRules, is_fix_message

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LabelOptions:
    """Everything that shapes the labels: the SZZ options, the waiting period, the revision to label.

    ``max_incremental_commits``: with more new commits than this, a run redoes the whole history instead of
    extending the stored state (measured on numpy: 34 new commits took 12 s incrementally, a full pass about
    70 s; the results are identical either way).
    """

    szz: SzzOptions = field(default_factory=SzzOptions)
    waiting_days: int = 90
    revision: str = "HEAD"
    allow_shallow: bool = False
    max_incremental_commits: int = 300
    #: How long to wait for another process labelling the same repository into the workspace.
    lock_wait_seconds: float = DEFAULT_WAIT_SECONDS


@dataclass(frozen=True, slots=True)
class PassStats:
    """What the line-tracking pass over the new commits did (``pass`` in the summary document)."""

    commits: int
    merges: int
    merge_files_resolved: int
    merge_files_aligned_here: int
    lazy_files: int
    desync_hunks: int

    def as_dict(self) -> dict[str, int]:
        return {
            "commits": self.commits,
            "merges": self.merges,
            "merge_files_resolved": self.merge_files_resolved,
            "merge_files_aligned_here": self.merge_files_aligned_here,
            "lazy_files": self.lazy_files,
            "desync_hunks": self.desync_hunks,
        }


@dataclass(frozen=True, slots=True)
class LabelSummary:
    """What one labelling run did, as ``defectops label`` prints it and the main job reports it.

    A typed record (other stages read its fields); :meth:`as_dict` is the ``--json`` document, whose keys
    and order are part of the CLI's interface. ``labels`` counts commits per verdict (defect, clean, unknown);
    ``new_unlinkable`` and ``dropped_lines`` count fixes and lines per reason.
    """

    repo: str
    repo_id: str
    tip: str
    variant: str
    mode: str
    notice: str | None
    now: datetime
    waiting_days: int
    commits: int
    new_commits: int
    new_fixes: int
    new_linked_fixes: int
    new_explicit_links: int
    unresolved_explicit_refs: int
    new_unlinkable: dict[str, int]
    dropped_lines: dict[str, int]
    fixes_total: int
    links_total: int
    labels: dict[str, int]
    issues_source: str | None
    issues_count: int | None
    ignored_revs: int
    pass_stats: PassStats
    history_seconds: float
    pass_seconds: float
    total_seconds: float
    labels_path: str | None
    links_path: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "repo_id": self.repo_id,
            "tip": self.tip,
            "variant": self.variant,
            "mode": self.mode,
            "notice": self.notice,
            "now": self.now,
            "waiting_days": self.waiting_days,
            "commits": self.commits,
            "new_commits": self.new_commits,
            "new_fixes": self.new_fixes,
            "new_linked_fixes": self.new_linked_fixes,
            "new_explicit_links": self.new_explicit_links,
            "unresolved_explicit_refs": self.unresolved_explicit_refs,
            "new_unlinkable": dict(self.new_unlinkable),
            "dropped_lines": dict(self.dropped_lines),
            "fixes_total": self.fixes_total,
            "links_total": self.links_total,
            "labels": dict(self.labels),
            "issues": (
                None
                if self.issues_source is None
                else {"source": self.issues_source, "count": self.issues_count}
            ),
            "ignored_revs": self.ignored_revs,
            "pass": self.pass_stats.as_dict(),
            "seconds": {
                "history": self.history_seconds,
                "pass": self.pass_seconds,
                "total": self.total_seconds,
            },
            "labels_path": self.labels_path,
            "links_path": self.links_path,
        }


@dataclass
class LabelResult:
    """The labels (one row per commit) and links (one row per fix, inducing commit and file), and a
    summary."""

    labels: pd.DataFrame
    links: pd.DataFrame
    summary: LabelSummary
    labels_path: Path | None = None
    links_path: Path | None = None


def classify_fixes(
    commits: Sequence[CommitInfo],
    indices: Sequence[int],
    rules: FixRules,
    issues: IssueList | None,
) -> tuple[dict[int, FixReason], dict[int, list[ExplicitRef]]]:
    """Which of ``indices`` are fixes, and why; plus the explicit references of each commit.

    Merge commits are never fixes (their changes are their branches' commits). When the message references
    issues that the issue list knows, the list decides: a fix exactly when one of them is a bug. Otherwise the
    message rules decide.
    """
    fixes: dict[int, FixReason] = {}
    explicit: dict[int, list[ExplicitRef]] = {}
    for index in indices:
        commit = commits[index]
        if commit.is_merge:
            continue
        refs = explicit_refs(commit.message)
        if refs:
            explicit[index] = refs
        decision = decide(commit.message, issues)
        if decision.known:
            if decision.bugs:
                fixes[index] = FixReason("issue:" + ",".join(decision.bugs), decision.reported_at)
            elif refs:
                fixes[index] = FixReason("message")
        elif is_fix_message(commit.message, rules):
            fixes[index] = FixReason("message")
    return fixes, explicit


def read_ignore_revs(repo: GitRepo, name: str | None, tip: str) -> tuple[list[str], str]:
    """Sha prefixes listed in the ignore-revs file (work tree first, else the tip's copy) and a digest."""
    if not name:
        return [], "none"
    on_disk = repo.path / name
    data = on_disk.read_bytes() if on_disk.is_file() else repo.run("show", f"{tip}:{name}", check=False)
    prefixes: list[str] = []
    for raw in data.decode("utf-8", "replace").splitlines():
        text = raw.split("#", 1)[0].strip().lower()
        if len(text) >= 7 and all(c in "0123456789abcdef" for c in text):
            prefixes.append(text)
    return prefixes, hashlib.sha256(data).hexdigest()[:16] if data else "none"


def _fingerprint(options: LabelOptions, issues: IssueList | None, ignore_digest: str) -> str:
    parts = [
        options.szz.fingerprint(),
        issues.fingerprint() if issues is not None else "no-issues",
        ignore_digest,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _links_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_links()
    frame = pd.DataFrame(rows, columns=LINK_COLUMNS)
    frame["fix_committed_at"] = pd.to_datetime(frame["fix_committed_at"], utc=True)
    return frame


def _commit_table(commits: Sequence[CommitInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sha": [c.sha for c in commits],
            "committed_at": pd.to_datetime([c.committer_time for c in commits], unit="s", utc=True),
            "is_merge": [c.is_merge for c in commits],
        }
    )


def label_repository(
    repo: GitRepo,
    workspace: Workspace,
    *,
    now: datetime,
    options: LabelOptions | None = None,
    issues: IssueList | None = None,
    rebuild: bool = False,
    store: bool = True,
    progress: Progress | None = None,
) -> LabelResult:
    """Label every commit reachable from ``options.revision`` as of ``now`` (an aware datetime).

    Incremental: when the workspace holds a state for this repository whose tip is an ancestor of the
    revision and whose settings match, only the new commits are streamed. ``rebuild`` forces a full pass.
    ``store=False`` computes without writing anything.
    """
    options = options or LabelOptions()
    if now.tzinfo is None:
        raise InputError("now must be timezone-aware")
    if not store:
        return _label(repo, workspace, now, options, issues, rebuild, store, progress)
    # One labeller of a repository's state and label tables at a time across processes; a second one waits,
    # then finds the state current and does only what is left.
    lock = state_folder(workspace, repo.repo_id()).with_name(f"{repo.repo_id()}-labels.lock")
    with exclusive(lock, what=f"labelling {repo.repo_id()}", wait_seconds=options.lock_wait_seconds):
        return _label(repo, workspace, now, options, issues, rebuild, store, progress)


def _label(
    repo: GitRepo,
    workspace: Workspace,
    now: datetime,
    options: LabelOptions,
    issues: IssueList | None,
    rebuild: bool,
    store: bool,
    progress: Progress | None,
) -> LabelResult:
    started = time.perf_counter()
    if not options.allow_shallow and repo.is_shallow():
        raise ShallowCloneError(
            f"{repo.path}: a shallow clone lacks the history that blame needs; fetch it with "
            "`git fetch --unshallow` (or pass allow_shallow to label only what is there)"
        )
    tip = repo.resolve(options.revision)
    repo_id = repo.repo_id()
    folder = state_folder(workspace, repo_id)
    ignore_prefixes, ignore_digest = (
        read_ignore_revs(repo, options.szz.ignore_revs_file, tip)
        if options.szz.variant == "ag"
        else ([], "none")
    )
    fingerprint = _fingerprint(options, issues, ignore_digest)

    stored: StoredState | None = None
    mode = "full"
    notice: str | None = None
    if not rebuild:
        stored = load_state(folder)
        if stored is not None:
            old_tip = str(stored.meta.get("tip", ""))
            if stored.meta.get("fingerprint") != fingerprint:
                notice = "labelling settings changed since the stored state: rebuilt from scratch"
                stored = None
            elif not repo.object_exists(old_tip) or not repo.is_ancestor(old_tip, tip):
                notice = (
                    f"the stored tip {old_tip[:12]} is not an ancestor of {options.revision} "
                    "(history rewritten, or another branch): rebuilt from scratch"
                )
                stored = None
            else:
                mode = "unchanged" if old_tip == tip else "incremental"

    commits: list[CommitInfo] = list(stored.commits) if stored is not None else []
    links_path = workspace.dataset_file(repo_id, "links")
    old_links = pd.DataFrame()
    if stored is not None and links_path.is_file():
        old_links = pd.read_parquet(links_path)
    elif stored is not None:
        mode, stored, commits = "full", None, []
        notice = "stored links are missing: rebuilt"

    new: list[CommitInfo] = []
    if stored is not None and mode == "incremental":
        new = read_history(repo, [tip, f"^{stored.meta['tip']}"])
        if len(new) > options.max_incremental_commits:
            # Each new branch that forked from an older commit than the stored tip costs a `git blame` per
            # file it touches; past a few hundred commits one pass over everything is faster (same result).
            notice = (
                f"{len(new):,} new commits (more than {options.max_incremental_commits:,}): one full pass is "
                "faster than extending the stored state"
            )
            mode, stored, commits, new = "full", None, [], []
    if stored is None:
        new = read_history(repo, [tip])
    first_new = len(commits)
    commits.extend(new)
    index_of: dict[str, int] = {c.sha: i for i, c in enumerate(commits)}
    history_seconds = time.perf_counter() - started

    new_indices = list(range(first_new, len(commits)))
    fixes, refs = classify_fixes(commits, new_indices, options.szz.fix_rules, issues)
    shas = ShaIndex(index_of)
    explicit: dict[int, list[ExplicitLink]] = {
        index: resolve_explicit(commits[index].sha, found, shas) for index, found in refs.items()
    }
    to_blame = {i for i in fixes if not any(link.inducing for link in explicit.get(i, ()))}
    ignored = {index_of[s] for p in ignore_prefixes if (s := shas.resolve(p)) is not None}

    def lookup(sha: str) -> int:
        found = index_of.get(sha)
        return -1 if found is None else found

    base_states: dict[int, LineState] = {}
    if stored is not None:
        base_states[index_of[str(stored.meta["tip"])]] = stored.tip_state

    def lazy(index: int) -> LineState:
        return LineState(loader=blame_loader(repo, commits[index].sha, lookup, options.szz.ignore_whitespace))

    order = [
        CommitNode(i, commits[i].sha, tuple(index_of[p] for p in commits[i].parents if p in index_of))
        for i in new_indices
    ]
    tracker = LineTracker(
        repo,
        ignore_whitespace=options.szz.ignore_whitespace,
        fixes=to_blame,
        ignored=ignored,
        base_states=base_states,
        lazy=lazy,
    )
    pass_started = time.perf_counter()
    revisions = [tip, f"^{stored.meta['tip']}"] if stored is not None else [tip]
    if order:
        result = tracker.run(order, revisions, tip=index_of[tip], progress=progress)
    else:
        result = TrackResult(tip_state=stored.tip_state if stored is not None else LineState())
    pass_seconds = time.perf_counter() - pass_started

    szz_stats = SzzStats()
    rows = build_links(
        commits, fixes, explicit, result.deleted, result.touched, ignored, options.szz, szz_stats
    )
    new_links = _links_frame([row.as_dict() for row in rows])
    links = pd.concat([old_links, new_links], ignore_index=True) if len(old_links) else new_links
    links = validate_links(links.reset_index(drop=True)) if len(links) else new_links
    labels = compute_labels(_commit_table(commits), links, now=now, waiting_days=options.waiting_days)

    meta = {
        "tip": tip,
        "fingerprint": fingerprint,
        "variant": options.szz.variant,
        "defectops_version": __version__,
        "commits": len(commits),
    }
    labels_path = workspace.dataset_file(repo_id, "labels")
    if store:
        if result.tip_state is None:
            raise GitError(f"internal: the pass did not reach the tip {tip}")
        save_state(folder, meta, commits, result.tip_state)
        links_path.parent.mkdir(parents=True, exist_ok=True)
        _write_parquet(links, links_path)
        _write_parquet(labels, labels_path)

    linked = links[links["inducing_sha"].notna()]
    summary = LabelSummary(
        repo=str(repo.path),
        repo_id=repo_id,
        tip=tip,
        variant=options.szz.variant,
        mode=mode,
        notice=notice,
        now=now.astimezone(UTC),
        waiting_days=options.waiting_days,
        commits=len(commits),
        new_commits=len(new_indices),
        new_fixes=szz_stats.fixes,
        new_linked_fixes=szz_stats.linked_fixes,
        new_explicit_links=szz_stats.explicit_links,
        unresolved_explicit_refs=szz_stats.unresolved_explicit,
        new_unlinkable=dict(sorted(szz_stats.unlinkable.items())),
        dropped_lines=dict(sorted(szz_stats.dropped_lines.items())),
        fixes_total=int(links["fix_sha"].nunique()) if len(links) else 0,
        links_total=len(linked),
        labels=label_counts(labels),
        issues_source=None if issues is None else issues.source,
        issues_count=None if issues is None else len(issues),
        ignored_revs=len(ignored),
        pass_stats=PassStats(
            commits=result.stats.commits,
            merges=result.stats.merges,
            merge_files_resolved=result.stats.merge_files_resolved,
            merge_files_aligned_here=result.stats.merge_files_aligned_here,
            lazy_files=result.stats.lazy_files,
            desync_hunks=result.stats.desync_hunks,
        ),
        history_seconds=round(history_seconds, 3),
        pass_seconds=round(pass_seconds, 3),
        total_seconds=round(time.perf_counter() - started, 3),
        labels_path=str(labels_path) if store else None,
        links_path=str(links_path) if store else None,
    )
    return LabelResult(
        labels=labels,
        links=links,
        summary=summary,
        labels_path=labels_path if store else None,
        links_path=links_path if store else None,
    )


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    try:
        replace_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
    except (ValueError, TypeError) as exc:  # pragma: no cover - schema checked before
        raise DataError(f"{path}: cannot write Parquet ({exc})") from exc


def load_labels(workspace: Workspace, repo: GitRepo) -> pd.DataFrame:
    """The stored labels of a repository (as last computed), for joining with the mining dataset on
    ``sha``. A file written before the verdict column was renamed (``label``) is read with ``verdict``."""
    path = workspace.dataset_file(repo.repo_id(), "labels")
    if not path.is_file():
        raise DataError(f"{path}: no labels yet; run `defectops label --repo {repo.path}` first")
    return upgrade_labels(pd.read_parquet(path))
