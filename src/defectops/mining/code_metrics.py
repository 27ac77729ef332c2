"""Code metrics of the files a commit changed (``defectops mine --code-metrics``), and their change.

Why this shape: a just-in-time model wants to know how much *harder* a change made the code it touched, not
how big the repository is. So only changed files are read, each at the new revision and at the first parent,
and every metric comes with its delta:

* source files of every language lizard supports (detected by lizard from the file name): cyclomatic
  complexity (sum over functions, max, mean), NLOC, tokens, functions;
* Terraform ``.tf`` files: block-level metrics from :mod:`defectops.mining.terraform`.

Blobs are read in bulk through one ``git cat-file --batch`` process per :func:`code_metrics` call (never a
process per file), using the blob ids the miner already has; results are cached by blob id, so in a linear
walk the parent side of a modified file is usually the new side of an earlier commit and is not read again.

The rows and their columns are in :mod:`defectops.mining.code_rows`, the measuring of one file version in
:mod:`defectops.mining.code_analysis`, the sums per commit in :mod:`defectops.mining.code_aggregate`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

from defectops.git import BlobReader, ChangeType, Commit, FileChange, GitRepo
from defectops.mining.code_analysis import Analysis, analyze_blob, language_of
from defectops.mining.code_rows import (
    SKIP_BINARY,
    SKIP_SUBMODULE,
    SKIP_SYMLINK,
    SKIP_TOO_LARGE,
    TERRAFORM,
    ZERO,
    FileCodeMetrics,
)
from defectops.mining.terraform import EMPTY, diff_terraform

#: Blobs larger than this (either side) are not analysed; the row says ``skipped="too_large"``.
DEFAULT_MAX_BLOB_BYTES: Final = 1 << 20
#: Analysed blobs remembered per call (a few hundred bytes each).
DEFAULT_CACHE_SIZE: Final = 8192


def _absent(oid: str) -> bool:
    return not oid or set(oid) == {"0"}


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which blobs one changed file needs, in which language, and whether it is skipped outright."""

    change: FileChange
    language: str
    old_oid: str | None  # None: the parent side is absent (counts as zeros)
    old_language: str | None
    new_oid: str | None
    skipped: str | None


def _family(language: str) -> str:
    return TERRAFORM if language == TERRAFORM else "code"


def _plan(change: FileChange) -> _Plan | None:
    old_path = change.old_path or change.path
    new_language = None if change.change_type == ChangeType.DELETED else language_of(change.path)
    old_language = None if change.change_type == ChangeType.ADDED else language_of(old_path)
    language = new_language or old_language
    if language is None:
        return None  # neither side is a language we measure: not read at all
    skipped = None
    if change.is_submodule:
        skipped = SKIP_SUBMODULE
    elif change.old_mode == "120000" or change.new_mode == "120000":
        skipped = SKIP_SYMLINK
    elif change.binary:
        skipped = SKIP_BINARY
    new_oid = None if new_language is None or _absent(change.new_blob) else change.new_blob
    same_family = old_language is not None and _family(old_language) == _family(language)
    old_oid = None if not same_family or _absent(change.old_blob) else change.old_blob
    return _Plan(
        change=change,
        language=language,
        old_oid=old_oid,
        old_language=old_language if old_oid is not None else None,
        new_oid=new_oid,
        skipped=skipped,
    )


class _Analyzer:
    """Reads and measures the blobs of one commit at a time, remembering results by (blob, language)."""

    def __init__(self, repo: GitRepo, max_bytes: int, cache_size: int) -> None:
        self._reader = BlobReader(repo, blobs_only=True)
        self._max_bytes = max_bytes
        self._cache: OrderedDict[tuple[str, str], Analysis] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self._reader.close()

    def _remember(self, key: tuple[str, str], analysis: Analysis) -> None:
        self._cache[key] = analysis
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def analyse(self, plans: Sequence[_Plan]) -> dict[tuple[str, str], Analysis]:
        wanted: dict[tuple[str, str], str] = {}  # (oid, language) -> a path of that language, for lizard
        for plan in plans:
            if plan.skipped is not None:
                continue
            change = plan.change
            if plan.new_oid is not None:
                wanted.setdefault((plan.new_oid, plan.language), change.path)
            if plan.old_oid is not None and plan.old_language is not None:
                wanted.setdefault((plan.old_oid, plan.old_language), change.old_path or change.path)
        results: dict[tuple[str, str], Analysis] = {}
        missing: dict[tuple[str, str], str] = {}
        for key, path in wanted.items():
            hit = self._cache.get(key)
            if hit is None:
                missing[key] = path
            else:
                self._cache.move_to_end(key)
                results[key] = hit
        if missing:
            oids = list(dict.fromkeys(oid for oid, _ in missing))
            blobs = dict(self._reader.read_many(oids, self._max_bytes))
            for (oid, language), path in missing.items():
                data = blobs[oid]
                if data is None:
                    analysis = Analysis(skipped=SKIP_TOO_LARGE)
                else:
                    analysis = analyze_blob(language, path, data)
                self._remember((oid, language), analysis)
                results[(oid, language)] = analysis
        return results


def _row(sha: str, plan: _Plan, results: dict[tuple[str, str], Analysis]) -> FileCodeMetrics:
    change = plan.change
    row = FileCodeMetrics(
        sha=sha,
        path=change.path,
        old_path=change.old_path,
        change_type=str(change.change_type),
        language=plan.language,
    )
    if plan.skipped is not None:  # decided from the log alone; nothing was read
        return replace(row, skipped=plan.skipped)
    absent = Analysis()
    new = results[(plan.new_oid, plan.language)] if plan.new_oid is not None else absent
    old = (
        results[(plan.old_oid, plan.old_language)]
        if plan.old_oid is not None and plan.old_language is not None
        else absent
    )
    skipped = new.skipped or old.skipped
    if skipped is not None:
        return replace(row, skipped=skipped)
    errors = [f"{side}: {e}" for side, e in (("new", new.error), ("parent", old.error)) if e]
    row = replace(
        row,
        parse_error=new.parse_error or old.parse_error,
        error="; ".join(errors) if errors else None,
    )
    if plan.language == TERRAFORM:
        tf_new = new.terraform if plan.new_oid is not None else EMPTY
        tf_old = old.terraform if plan.old_oid is not None else EMPTY
        diff = diff_terraform(tf_old, tf_new) if tf_new is not None and tf_old is not None else None
        return replace(row, tf=tf_new, tf_parent=tf_old, tf_diff=diff)
    code_new = new.source if plan.new_oid is not None else ZERO
    code_old = old.source if plan.old_oid is not None else ZERO
    return replace(row, code=code_new, code_parent=code_old)


def code_metrics(
    repo: GitRepo,
    commits: Iterable[Commit],
    *,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> Iterator[FileCodeMetrics]:
    """One :class:`FileCodeMetrics` per changed file in a measured language, commit by commit, lazily.

    Merge commits yield nothing (they are recorded by the miner but not scored). Files in no language that
    lizard or the Terraform reader measures yield no row and are never read. Submodules, symlinks, binary
    files and blobs over ``max_blob_bytes`` yield a row with ``skipped`` set. Starts at most one
    ``git cat-file --batch`` process, stopped when the iterator is exhausted or closed.
    """
    analyzer = _Analyzer(repo, max_blob_bytes, cache_size)
    try:
        for commit in commits:
            if commit.is_merge:
                continue
            plans = [plan for change in commit.files if (plan := _plan(change)) is not None]
            if not plans:
                continue
            results = analyzer.analyse(plans)
            for plan in plans:
                yield _row(commit.sha, plan, results)
    finally:
        analyzer.close()
