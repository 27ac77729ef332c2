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
"""

from __future__ import annotations

import ast
import contextlib
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import IO, Final

from defectops.git import BlobReader, ChangeType, Commit, FileChange, GitRepo
from defectops.mining.terraform import (
    BLOCK_KINDS,
    EMPTY,
    TerraformDiff,
    TerraformMetrics,
    TerraformParseError,
    diff_terraform,
    parse_terraform,
)

#: Blobs larger than this (either side) are not analysed; the row says ``skipped="too_large"``.
DEFAULT_MAX_BLOB_BYTES: Final = 1 << 20
#: Analysed blobs remembered per call (a few hundred bytes each).
DEFAULT_CACHE_SIZE: Final = 8192
#: The language name of Terraform rows; every other language name is lizard's (``python``, ``cpp``, ...).
TERRAFORM: Final = "terraform"

SKIP_BINARY: Final = "binary"
SKIP_SUBMODULE: Final = "submodule"
SKIP_SYMLINK: Final = "symlink"
SKIP_TOO_LARGE: Final = "too_large"

# git's own binary heuristic: a NUL byte in the first 8000 bytes.
_BINARY_PROBE: Final = 8000


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    """lizard's measures of one source file at one revision (an absent file is all zeros)."""

    nloc: int = 0
    ccn: int = 0  # sum of the cyclomatic complexity of every function
    ccn_max: int = 0  # the most complex function (0 without functions)
    tokens: int = 0
    functions: int = 0

    @property
    def ccn_mean(self) -> float:
        """Mean cyclomatic complexity per function; 0.0 for a file without functions."""
        return self.ccn / self.functions if self.functions else 0.0


ZERO: Final = SourceMetrics()


@dataclass(frozen=True, slots=True)
class SourceDelta:
    """New minus parent, metric by metric."""

    nloc: int
    ccn: int
    ccn_max: int
    ccn_mean: float
    tokens: int
    functions: int

    @classmethod
    def between(cls, parent: SourceMetrics, new: SourceMetrics) -> SourceDelta:
        return cls(
            nloc=new.nloc - parent.nloc,
            ccn=new.ccn - parent.ccn,
            ccn_max=new.ccn_max - parent.ccn_max,
            ccn_mean=new.ccn_mean - parent.ccn_mean,
            tokens=new.tokens - parent.tokens,
            functions=new.functions - parent.functions,
        )


@dataclass(frozen=True, slots=True)
class FileCodeMetrics:
    """One changed file of one commit: metrics at the new revision and against the first parent.

    An absent side (added or deleted file, or a side in another language family) counts as zeros. ``None``
    means *could not be measured*: the row was skipped (``skipped`` says why), or that side failed to parse
    (``parse_error`` is set if either side failed; ``error`` has the parser's first line per side, as
    ``"new: ..."`` and/or ``"parent: ..."``). Source rows fill ``code``/``code_parent``,
    Terraform rows ``tf``/``tf_parent``/``tf_diff``.

    For Python, ``parse_error`` is also set when the source is not valid Python 3 syntax; lizard's values are
    kept then, because lizard is a tolerant parser that measures broken code too.
    """

    sha: str
    path: str
    old_path: str | None
    change_type: str
    language: str
    skipped: str | None = None
    parse_error: bool = False
    error: str | None = None
    code: SourceMetrics | None = None
    code_parent: SourceMetrics | None = None
    tf: TerraformMetrics | None = None
    tf_parent: TerraformMetrics | None = None
    tf_diff: TerraformDiff | None = None

    @property
    def is_terraform(self) -> bool:
        return self.language == TERRAFORM

    @property
    def code_delta(self) -> SourceDelta | None:
        """New minus parent, or None when either side could not be measured."""
        if self.code is None or self.code_parent is None:
            return None
        return SourceDelta.between(self.code_parent, self.code)

    def to_row(self) -> dict[str, str | int | float | bool | None]:
        """A flat row with the names of :data:`FILE_COLUMNS` (for a per-file table)."""
        row: dict[str, str | int | float | bool | None] = {
            "sha": self.sha,
            "path": self.path,
            "old_path": self.old_path,
            "change_type": self.change_type,
            "language": self.language,
            "skipped": self.skipped,
            "parse_error": self.parse_error,
            "error": self.error,
        }
        new, delta = self.code, self.code_delta
        for name in ("nloc", "ccn", "ccn_max", "ccn_mean", "tokens", "functions"):
            row[f"code_{name}"] = None if new is None else getattr(new, name)
            row[f"code_{name}_delta"] = None if delta is None else getattr(delta, name)
        tf, diff = self.tf, self.tf_diff
        for kind in BLOCK_KINDS:
            row[f"tf_{kind}"] = None if tf is None else tf.count(kind)
            row[f"tf_{kind}_added"] = None if diff is None else diff.added[kind]
            row[f"tf_{kind}_removed"] = None if diff is None else diff.removed[kind]
            row[f"tf_{kind}_changed"] = None if diff is None else diff.changed[kind]
        row["tf_blocks"] = None if tf is None else tf.total_blocks
        row["tf_blocks_added"] = None if diff is None else diff.blocks_added
        row["tf_blocks_removed"] = None if diff is None else diff.blocks_removed
        row["tf_blocks_changed"] = None if diff is None else diff.blocks_changed
        row["tf_attributes"] = None if tf is None else tf.attributes
        row["tf_attributes_delta"] = None if diff is None else diff.attributes_delta
        row["tf_max_depth"] = None if tf is None else tf.max_depth
        row["tf_max_depth_delta"] = None if diff is None else diff.max_depth_delta
        return row


@dataclass(slots=True)
class CommitCodeMetrics:
    """Code metrics of one commit: the changed files' values summed (max for ``*_max*``), ready to join.

    Sums of new values include every measured file; ``*_delta`` sums include the files measured on both
    sides. ``code_ccn_mean`` is ``code_ccn / code_functions``; ``*_max_delta`` is the max over the changed
    files at the new revision minus the max over the same files at the parent.
    """

    sha: str
    code_files: int = 0
    code_files_skipped: int = 0
    code_parse_errors: int = 0
    code_nloc: int = 0
    code_nloc_delta: int = 0
    code_ccn: int = 0
    code_ccn_delta: int = 0
    code_ccn_max: int = 0
    code_ccn_max_delta: int = 0
    code_ccn_mean: float = 0.0
    code_ccn_mean_delta: float = 0.0
    code_tokens: int = 0
    code_tokens_delta: int = 0
    code_functions: int = 0
    code_functions_delta: int = 0
    tf_files: int = 0
    tf_parse_errors: int = 0
    tf_resources: int = 0
    tf_resources_added: int = 0
    tf_resources_removed: int = 0
    tf_resources_changed: int = 0
    tf_data_sources: int = 0
    tf_data_sources_added: int = 0
    tf_data_sources_removed: int = 0
    tf_data_sources_changed: int = 0
    tf_modules: int = 0
    tf_modules_added: int = 0
    tf_modules_removed: int = 0
    tf_modules_changed: int = 0
    tf_variables: int = 0
    tf_variables_added: int = 0
    tf_variables_removed: int = 0
    tf_variables_changed: int = 0
    tf_outputs: int = 0
    tf_outputs_added: int = 0
    tf_outputs_removed: int = 0
    tf_outputs_changed: int = 0
    tf_locals: int = 0
    tf_locals_added: int = 0
    tf_locals_removed: int = 0
    tf_locals_changed: int = 0
    tf_providers: int = 0
    tf_providers_added: int = 0
    tf_providers_removed: int = 0
    tf_providers_changed: int = 0
    tf_blocks: int = 0
    tf_blocks_added: int = 0
    tf_blocks_removed: int = 0
    tf_blocks_changed: int = 0
    tf_attributes: int = 0
    tf_attributes_delta: int = 0
    tf_max_depth: int = 0
    tf_max_depth_delta: int = 0

    def as_dict(self) -> dict[str, int | float]:
        """The metric columns (:data:`COMMIT_COLUMNS`, without ``sha``) in their stable order."""
        return {name: getattr(self, name) for name in COMMIT_COLUMNS}


#: The commit-level columns, in this order, forever: the lead joins them onto the commit dataset by ``sha``.
#: Documented in docs/metrics.md ("Code metrics (--code-metrics)"). Floats: ``code_ccn_mean*``; else ints.
COMMIT_COLUMNS: Final[tuple[str, ...]] = (
    "code_files",
    "code_files_skipped",
    "code_parse_errors",
    "code_nloc",
    "code_nloc_delta",
    "code_ccn",
    "code_ccn_delta",
    "code_ccn_max",
    "code_ccn_max_delta",
    "code_ccn_mean",
    "code_ccn_mean_delta",
    "code_tokens",
    "code_tokens_delta",
    "code_functions",
    "code_functions_delta",
    "tf_files",
    "tf_parse_errors",
    "tf_resources",
    "tf_resources_added",
    "tf_resources_removed",
    "tf_resources_changed",
    "tf_data_sources",
    "tf_data_sources_added",
    "tf_data_sources_removed",
    "tf_data_sources_changed",
    "tf_modules",
    "tf_modules_added",
    "tf_modules_removed",
    "tf_modules_changed",
    "tf_variables",
    "tf_variables_added",
    "tf_variables_removed",
    "tf_variables_changed",
    "tf_outputs",
    "tf_outputs_added",
    "tf_outputs_removed",
    "tf_outputs_changed",
    "tf_locals",
    "tf_locals_added",
    "tf_locals_removed",
    "tf_locals_changed",
    "tf_providers",
    "tf_providers_added",
    "tf_providers_removed",
    "tf_providers_changed",
    "tf_blocks",
    "tf_blocks_added",
    "tf_blocks_removed",
    "tf_blocks_changed",
    "tf_attributes",
    "tf_attributes_delta",
    "tf_max_depth",
    "tf_max_depth_delta",
)

#: Float columns of :data:`COMMIT_COLUMNS`; every other one is an integer.
FLOAT_COLUMNS: Final[frozenset[str]] = frozenset({"code_ccn_mean", "code_ccn_mean_delta"})

#: The columns of :meth:`FileCodeMetrics.to_row`, in order.
FILE_COLUMNS: Final[tuple[str, ...]] = (
    "sha",
    "path",
    "old_path",
    "change_type",
    "language",
    "skipped",
    "parse_error",
    "error",
    *(
        f"code_{n}{s}"
        for n in ("nloc", "ccn", "ccn_max", "ccn_mean", "tokens", "functions")
        for s in ("", "_delta")
    ),
    *(f"tf_{k}{s}" for k in BLOCK_KINDS for s in ("", "_added", "_removed", "_changed")),
    "tf_blocks",
    "tf_blocks_added",
    "tf_blocks_removed",
    "tf_blocks_changed",
    "tf_attributes",
    "tf_attributes_delta",
    "tf_max_depth",
    "tf_max_depth_delta",
)

# -- language detection and analysis ---------------------------------------------------------------


@lru_cache(maxsize=16384)
def language_of(path: str) -> str | None:
    """``terraform`` for ``.tf``, lizard's language name for what lizard reads, None for anything else.

    lizard itself falls back to its C reader for unknown files; we do not, so a README is never "C".
    """
    if path.lower().endswith(".tf"):
        return TERRAFORM
    import lizard

    reader = lizard.get_reader_for(path)
    if reader is None:
        return None
    names = getattr(reader, "language_names", None) or [reader.__name__]
    return str(names[0])


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What one blob measured as: metrics, or why not (cached by blob id and language)."""

    source: SourceMetrics | None = None
    terraform: TerraformMetrics | None = None
    skipped: str | None = None
    parse_error: bool = False
    error: str | None = None


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


class _LizardComplaints:
    """Stands in for ``sys.stderr`` during one lizard call: keeps lizard's ``[skip] ...`` complaint (the only
    sign of a RecursionError it swallows) and passes every other write through, so a progress bar drawing on
    stderr from another thread is neither lost nor mistaken for a complaint."""

    def __init__(self, target: IO[str]) -> None:
        self._target = target
        self.complaints: list[str] = []

    def write(self, text: str) -> int:
        if text.startswith("[skip] fail to process"):
            self.complaints.append(text.strip())
            return len(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._target, name)


def analyze_source(path: str, text: str) -> tuple[SourceMetrics | None, str | None]:
    """lizard's metrics of ``text`` read as the language of ``path``, and a parse-error message (or None).

    lizard does not reject broken code; its failures (an exception, or a RecursionError it reports on stderr
    and then returns partial results for) are parse errors with no metrics. Python is also checked with
    ``ast`` so that syntax errors are flagged, keeping lizard's values.
    """
    import lizard

    watcher = _LizardComplaints(sys.stderr)
    try:
        with contextlib.redirect_stderr(watcher):
            info = lizard.analyze_file.analyze_source_code(path, text)
    except Exception as exc:  # lizard's readers are heuristic state machines; any failure is a parse error
        return None, f"lizard failed: {type(exc).__name__}: {exc}".splitlines()[0]
    if watcher.complaints:
        return None, f"lizard: {watcher.complaints[0].splitlines()[0]}"
    functions = info.function_list
    ccns = [int(f.cyclomatic_complexity) for f in functions]
    metrics = SourceMetrics(
        nloc=int(info.nloc),
        ccn=sum(ccns),
        ccn_max=max(ccns, default=0),
        tokens=int(info.token_count),
        functions=len(functions),
    )
    error = _python_syntax_error(path, text) if language_of(path) == "python" else None
    return metrics, error


def _python_syntax_error(path: str, text: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of old code (invalid escapes) are not errors
            ast.parse(text, filename=path)
    except SyntaxError as exc:
        return f"Python syntax error: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return f"Python syntax error: {type(exc).__name__}"
    return None


def _analyze_blob(language: str, path: str, data: bytes) -> _Analysis:
    if b"\0" in data[:_BINARY_PROBE]:
        return _Analysis(skipped=SKIP_BINARY)
    text = _decode(data)
    if language == TERRAFORM:
        try:
            return _Analysis(terraform=parse_terraform(text))
        except TerraformParseError as exc:
            return _Analysis(parse_error=True, error=str(exc))
    source, error = analyze_source(path, text)
    return _Analysis(source=source, parse_error=error is not None, error=error)


# -- the walk --------------------------------------------------------------------------------------


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
        self._cache: OrderedDict[tuple[str, str], _Analysis] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self._reader.close()

    def _remember(self, key: tuple[str, str], analysis: _Analysis) -> None:
        self._cache[key] = analysis
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def analyse(self, plans: Sequence[_Plan]) -> dict[tuple[str, str], _Analysis]:
        wanted: dict[tuple[str, str], str] = {}  # (oid, language) -> a path of that language, for lizard
        for plan in plans:
            if plan.skipped is not None:
                continue
            change = plan.change
            if plan.new_oid is not None:
                wanted.setdefault((plan.new_oid, plan.language), change.path)
            if plan.old_oid is not None and plan.old_language is not None:
                wanted.setdefault((plan.old_oid, plan.old_language), change.old_path or change.path)
        results: dict[tuple[str, str], _Analysis] = {}
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
                    analysis = _Analysis(skipped=SKIP_TOO_LARGE)
                else:
                    analysis = _analyze_blob(language, path, data)
                self._remember((oid, language), analysis)
                results[(oid, language)] = analysis
        return results


def _row(sha: str, plan: _Plan, results: dict[tuple[str, str], _Analysis]) -> FileCodeMetrics:
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
    absent = _Analysis()
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


# -- commit level ----------------------------------------------------------------------------------


def aggregate_per_commit(
    rows: Iterable[FileCodeMetrics], shas: Iterable[str] | None = None
) -> dict[str, CommitCodeMetrics]:
    """Sum the file rows of each commit into one :class:`CommitCodeMetrics` (columns :data:`COMMIT_COLUMNS`).

    ``shas``, when given, also creates an all-zero record for every listed commit without rows (merges, or
    commits touching no measured file), so the join onto the commit dataset has no gaps.
    """
    acc: dict[str, _CommitAccumulator] = {}
    if shas is not None:
        for sha in shas:
            acc.setdefault(sha, _CommitAccumulator(sha))
    for row in rows:
        target = acc.get(row.sha)
        if target is None:
            target = acc[row.sha] = _CommitAccumulator(row.sha)
        target.add(row)
    return {sha: a.finish() for sha, a in acc.items()}


class _CommitAccumulator:
    def __init__(self, sha: str) -> None:
        self.out = CommitCodeMetrics(sha=sha)
        # Sums over the files measured on both sides, for the mean and max deltas.
        self.both_new = ZERO
        self.both_parent = ZERO
        self.max_new_both = 0
        self.max_parent_both = 0
        self.tf_depth_new_both = 0
        self.tf_depth_parent_both = 0

    def add(self, row: FileCodeMetrics) -> None:
        out = self.out
        if row.skipped is not None:
            out.code_files_skipped += 1
            return
        if row.is_terraform:
            self._add_terraform(row)
            return
        out.code_files += 1
        out.code_parse_errors += int(row.parse_error)
        new, parent = row.code, row.code_parent
        if new is not None:
            out.code_nloc += new.nloc
            out.code_ccn += new.ccn
            out.code_ccn_max = max(out.code_ccn_max, new.ccn_max)
            out.code_tokens += new.tokens
            out.code_functions += new.functions
        if new is not None and parent is not None:
            out.code_nloc_delta += new.nloc - parent.nloc
            out.code_ccn_delta += new.ccn - parent.ccn
            out.code_tokens_delta += new.tokens - parent.tokens
            out.code_functions_delta += new.functions - parent.functions
            self.both_new = _plus(self.both_new, new)
            self.both_parent = _plus(self.both_parent, parent)
            self.max_new_both = max(self.max_new_both, new.ccn_max)
            self.max_parent_both = max(self.max_parent_both, parent.ccn_max)

    def _add_terraform(self, row: FileCodeMetrics) -> None:
        out = self.out
        out.tf_files += 1
        out.tf_parse_errors += int(row.parse_error)
        tf, diff = row.tf, row.tf_diff
        if tf is not None:
            for kind in BLOCK_KINDS:
                name = f"tf_{kind}"
                setattr(out, name, getattr(out, name) + tf.count(kind))
            out.tf_blocks += tf.total_blocks
            out.tf_attributes += tf.attributes
            out.tf_max_depth = max(out.tf_max_depth, tf.max_depth)
        if diff is not None and tf is not None and row.tf_parent is not None:
            for kind in BLOCK_KINDS:
                for part, counts in (
                    ("added", diff.added),
                    ("removed", diff.removed),
                    ("changed", diff.changed),
                ):
                    name = f"tf_{kind}_{part}"
                    setattr(out, name, getattr(out, name) + counts[kind])
            out.tf_blocks_added += diff.blocks_added
            out.tf_blocks_removed += diff.blocks_removed
            out.tf_blocks_changed += diff.blocks_changed
            out.tf_attributes_delta += diff.attributes_delta
            self.tf_depth_new_both = max(self.tf_depth_new_both, tf.max_depth)
            self.tf_depth_parent_both = max(self.tf_depth_parent_both, row.tf_parent.max_depth)

    def finish(self) -> CommitCodeMetrics:
        out = self.out
        out.code_ccn_mean = out.code_ccn / out.code_functions if out.code_functions else 0.0
        out.code_ccn_mean_delta = self.both_new.ccn_mean - self.both_parent.ccn_mean
        out.code_ccn_max_delta = self.max_new_both - self.max_parent_both
        out.tf_max_depth_delta = self.tf_depth_new_both - self.tf_depth_parent_both
        return out


def _plus(a: SourceMetrics, b: SourceMetrics) -> SourceMetrics:
    return SourceMetrics(
        nloc=a.nloc + b.nloc,
        ccn=a.ccn + b.ccn,
        ccn_max=max(a.ccn_max, b.ccn_max),
        tokens=a.tokens + b.tokens,
        functions=a.functions + b.functions,
    )
