"""The origin commit of every line, tracked through the whole history in one streaming pass.

Why not ``git blame`` per fix: a blame re-walks the history of one file for every fix, 100–170 ms per file
on numpy, about 24,000 blames for its whole history. This module reads the history once, oldest first, and
keeps for every file of every commit it still needs a list with the origin commit of each line. When a fix
deletes or changes lines, their origins are a slice of that list: exactly what ``git blame`` on the fix's
parent reports, because the list is built with blame's own rules:

- A non-merge commit's diff against its parent (``git log -p -U0``, Myers, with ``-w`` for the
  whitespace-blind variant, as ``git blame -w``) passes every line outside a hunk on to the child and gives
  the added lines the commit itself. Renames (``-M``) carry the list over to the new path.
- A merge takes, per file, the whole list of the first parent whose blob is identical (blame's "same blob"
  rule, parents in order; a parent that has the file under another name counts, as in blame). Only when
  the merged file differs from every parent (both sides changed it: about 3,500 files in numpy's 10,000
  merges) are its lines aligned with each parent in turn, first parent first, using git's own per-parent
  alignment from the merge's combined diff (``git log -c --combined-all-paths -p -U0``); the lines no parent
  explains belong to the merge. Merges are otherwise streamed as raw diffs: their patches against the first
  parent are larger than all non-merge patches together.
- A file added as an exact copy of a file that the same commit deletes or renames continues its history
  (blame's rename search for a single path finds such copies; ``git log -M`` pairs only one of them).
- Commits in an ignore-revs list hand each line they wrote the origin of the old line that git's
  ``--ignore-rev`` heuristic matches (:mod:`defectops.labeling.ignore_revs`).

States are copy-on-write per commit (a dict of path -> list, the lists shared and never mutated), kept only
while a child still needs them; with ``--topo-order`` at most a few dozen are alive at once. The tip's state
is returned so that a later run continues from it (see :mod:`defectops.labeling.state`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from defectops.errors import GitError
from defectops.git import BlobReader, GitRepo
from defectops.labeling.alignment import (
    apply_hunks,
    combined_origins,
    matching_lines,
    normalise,
    split_lines,
)
from defectops.labeling.diffs import CombinedFile, DiffEntry, parse_combined_block
from defectops.labeling.ignore_revs import ignored_commit_origins
from defectops.labeling.origins import (
    DeletedLines,
    FileLines,
    FileTouch,
    LineState,
    Loader,
    TrackResult,
    TrackStats,
)
from defectops.labeling.streams import OrderedStream, combined_args, merge_args, patch_args

# LineState and TrackResult are part of this module's interface (the tracker's inputs and result).
__all__ = ["CommitNode", "LineState", "LineTracker", "TrackResult"]

_SUBMODULE = b"160000"


@dataclass(frozen=True, slots=True)
class CommitNode:
    """What the pass needs of a commit: its index in the commit table and its parents' indices."""

    index: int
    sha: str
    parents: tuple[int, ...]


class LineTracker:
    """Streams the history of a range once and maintains line origins (see the module docstring).

    ``fixes``: commit indices whose deleted lines must be recorded. ``ignored``: indices of ignore-revs
    commits. ``base_states``: states of commits outside the range that commits in the range build on (the
    stored tip); ``lazy``: makes a state for any other outside parent (files loaded on demand with ``git
    blame``).
    """

    def __init__(
        self,
        repo: GitRepo,
        *,
        ignore_whitespace: bool,
        fixes: set[int],
        ignored: set[int] | None = None,
        base_states: dict[int, LineState] | None = None,
        lazy: Callable[[int], LineState] | None = None,
    ) -> None:
        self.repo = repo
        self.ignore_whitespace = ignore_whitespace
        self.fixes = fixes
        self.ignored = ignored or set()
        self.base_states = dict(base_states or {})
        self.lazy = lazy
        self._blobs = BlobReader(repo)
        self._stats = TrackStats()
        self._lines_cache: dict[bytes, list[bytes]] = {}
        self._combined: dict[bytes, CombinedFile] = {}

    def run(
        self,
        order: Sequence[CommitNode],
        revisions: Sequence[str],
        tip: int | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> TrackResult:
        """Process ``order`` (parents before children), the commits of ``git log <revisions>``.

        ``tip`` is the commit whose final state is returned (normally HEAD). ``progress(done, total)`` is
        called every 500 commits and at the end.
        """
        result = TrackResult(tip_state=None)
        self._stats = result.stats
        if not order:
            return result
        remaining: dict[int, int] = {}
        for node in order:
            for parent in node.parents:
                remaining[parent] = remaining.get(parent, 0) + 1
        states: dict[int, LineState] = {}
        patches = self._ordered(patch_args(self.ignore_whitespace), revisions)
        merges = self._ordered(merge_args(), revisions)
        combined = self._ordered(combined_args(self.ignore_whitespace), revisions)
        try:
            for node in order:
                is_merge = len(node.parents) > 1
                if is_merge:
                    entries = merges.take(node.sha)
                    self._combined = parse_combined_block(combined.block(node.sha))
                else:
                    entries = patches.take(node.sha, want_text=node.index in self.fixes)
                state = self._state_for_child(node, states, remaining)
                if is_merge:
                    others = [self._peek(p, states) for p in node.parents[1:]]
                    self._apply_merge(node.index, state, entries, others, result.stats)
                    result.stats.merges += 1
                else:
                    self._apply_commit(node.index, state, entries, result)
                result.stats.commits += 1
                for parent in node.parents[1:]:
                    self._release(parent, states, remaining)
                if remaining.get(node.index, 0) > 0:
                    states[node.index] = state
                if node.index == tip:
                    result.tip_state = state if remaining.get(node.index, 0) == 0 else state.copy()
                if progress is not None and result.stats.commits % 500 == 0:
                    progress(result.stats.commits, len(order))
            if progress is not None:
                progress(result.stats.commits, len(order))
        finally:
            patches.close()
            merges.close()
            combined.close()
            self._blobs.close()
        return result

    # -- states ----------------------------------------------------------------------------------------------

    def _peek(self, index: int, states: dict[int, LineState]) -> LineState:
        state = states.get(index)
        if state is None:
            state = self.base_states.get(index)
        if state is None:
            if self.lazy is None:
                raise GitError(f"internal: no line state for parent commit #{index}")
            state = self.lazy(index)
            loader = state.loader
            if loader is not None:
                stats = self._stats

                def counted(path: bytes, _load: Loader = loader) -> FileLines | None:
                    stats.lazy_files += 1
                    return _load(path)

                state.loader = counted
            self.base_states[index] = state
        return state

    def _release(self, index: int, states: dict[int, LineState], remaining: dict[int, int]) -> None:
        left = remaining.get(index, 0) - 1
        remaining[index] = left
        if left <= 0:
            states.pop(index, None)

    def _state_for_child(
        self, node: CommitNode, states: dict[int, LineState], remaining: dict[int, int]
    ) -> LineState:
        if not node.parents:
            return LineState()
        first = node.parents[0]
        if first in states and remaining.get(first, 0) == 1:
            remaining[first] = 0
            return states.pop(first)  # the last child takes the parent's state over, no copy
        state = self._peek(first, states).copy()
        self._release(first, states, remaining)
        return state

    # -- applying one commit ---------------------------------------------------------------------------------

    def _apply_commit(
        self, commit: int, state: LineState, entries: list[DiffEntry], result: TrackResult
    ) -> None:
        is_fix = commit in self.fixes
        inherit = commit in self.ignored
        touched: list[FileTouch] = []
        # Read every old file first: a rename's source may be another entry's target in the same commit.
        olds = [state.get(e.old_path) if e.old_path is not None else None for e in entries]
        # Files that leave their path in this commit: blame follows an exact copy of one as a rename.
        moved = {
            e.old_blob: old
            for e, old in zip(entries, olds, strict=True)
            if e.status in ("D", "R") and old is not None and not old.binary
        }
        for entry in entries:
            if entry.status == "R" and entry.old_path is not None:
                state.remove(entry.old_path)
            elif entry.status == "D":
                state.remove(entry.new_path)
        for entry, old in zip(entries, olds, strict=True):
            status = entry.status
            modified = status in ("M", "R", "T", "D")
            if is_fix:
                touched.append(
                    FileTouch(
                        status=status,
                        path=entry.new_path,
                        old_path=entry.old_path if modified or status == "C" else None,
                        binary=entry.binary or _SUBMODULE in (entry.old_mode, entry.new_mode),
                        added=sum(h[3] for h in entry.hunks),
                        deleted=sum(h[1] for h in entry.hunks),
                    )
                )
                if old is not None and modified:
                    self._record(commit, entry, old, result)
            if status == "D":
                continue
            if entry.new_mode == _SUBMODULE:
                state.remove(entry.new_path)
                continue
            if entry.binary:
                state.put(entry.new_path, FileLines(entry.new_blob, [], binary=True))
                continue
            bad = 0
            source = moved.get(entry.new_blob) if status == "A" else None
            if source is not None:
                origins = source.origins
            elif status == "T" or entry.old_mode == _SUBMODULE:
                # A type change is a deletion of the old content and an addition of the new one.
                origins = [commit] * sum(h[3] for h in entry.hunks)
            elif status == "C":
                copied, bad = apply_hunks(old.origins if old is not None else (), entry.hunks, commit)
                origins = [commit] * len(copied)  # blame without -C does not follow copies
            elif old is not None and status in ("M", "R") and not entry.hunks:
                origins = old.origins  # a pure rename, or whitespace only under -w: same lines
            elif inherit and old is not None and status in ("M", "R") and not old.binary:
                origins = self._ignored_origins(commit, entry, old)
            else:
                base = old.origins if (old is not None and status in ("M", "R")) else ()
                origins, bad = apply_hunks(base, entry.hunks, commit)
            result.stats.desync_hunks += bad
            state.put(entry.new_path, FileLines(entry.new_blob, origins))
        if is_fix:
            result.touched[commit] = touched

    def _ignored_origins(self, commit: int, entry: DiffEntry, old: FileLines) -> list[int]:
        """An ignore-revs commit: its new lines take the origins of the lines git's blame would match."""
        parent_lines = split_lines(self._read(entry.old_blob))
        if len(parent_lines) != len(old.origins):
            # The state does not describe the parent blob (should not happen): the nearest-line rule.
            return apply_hunks(old.origins, entry.hunks, commit, inherit=True)[0]
        target_lines = split_lines(self._read(entry.new_blob))
        return ignored_commit_origins(old.origins, entry.hunks, parent_lines, target_lines, commit)

    def _record(self, commit: int, entry: DiffEntry, old: FileLines, result: TrackResult) -> None:
        if old.binary:
            return
        origins = old.origins
        for k, (a, b, _c, _d) in enumerate(entry.hunks):
            if not b:
                continue
            start = a - 1
            text = entry.deleted_text[k] if k < len(entry.deleted_text) else []
            result.deleted.append(
                DeletedLines(
                    fix=commit,
                    path=entry.old_path if entry.old_path is not None else entry.new_path,
                    new_path=None if entry.status == "D" else entry.new_path,
                    start=a,
                    origins=list(origins[start : start + b]),
                    text=text,
                )
            )

    def _apply_merge(
        self,
        commit: int,
        state: LineState,
        entries: list[DiffEntry],
        others: list[LineState],
        stats: TrackStats,
    ) -> None:
        olds = [state.get(e.old_path) if e.old_path is not None else None for e in entries]
        for entry in entries:
            if entry.status == "R" and entry.old_path is not None:
                state.remove(entry.old_path)
            elif entry.status == "D":
                state.remove(entry.new_path)
        for entry, old in zip(entries, olds, strict=True):
            if entry.status == "D":
                continue
            if entry.new_mode == _SUBMODULE:
                state.remove(entry.new_path)
                continue
            combined = self._combined.get(entry.new_path)
            same: FileLines | None = None
            for k, other in enumerate(others, start=1):
                path = entry.new_path if combined is None else combined.parent_path(k, entry.new_path)
                candidate = other.get(path) if path is not None else None
                if candidate is not None and candidate.blob == entry.new_blob:
                    same = candidate
                    break
            if same is not None:
                state.put(entry.new_path, same)
                continue
            stats.merge_files_resolved += 1
            state.put(entry.new_path, self._resolve_merge(commit, entry, old, others))

    def _resolve_merge(
        self, commit: int, entry: DiffEntry, first: FileLines | None, others: list[LineState]
    ) -> FileLines:
        """A merged file that differs from every parent: align it with each parent in turn, as blame does.

        The alignment is git's own (the merge's combined diff); only when git did not report the file there
        (a whitespace-only difference under ``-w``, an unusual rename) are the blobs read and aligned here.
        """
        combined = self._combined.get(entry.new_path)
        parents: list[FileLines | None] = [first if entry.status != "A" else None]
        for k, other in enumerate(others, start=1):
            path = entry.new_path if combined is None else combined.parent_path(k, entry.new_path)
            parents.append(other.get(path) if path is not None else None)
        if combined is not None and combined.binary:
            return FileLines(entry.new_blob, [], binary=True)
        if combined is not None and combined.parents == len(parents):
            resolved = combined_origins(commit, combined, parents)
            if resolved is not None:
                return FileLines(entry.new_blob, resolved)
        self._stats.merge_files_aligned_here += 1
        merged_lines = self._lines(entry.new_blob)
        if merged_lines is None:
            return FileLines(entry.new_blob, [], binary=True)
        merged = merged_lines
        origins: list[int | None] = [None] * len(merged)
        left = len(merged)
        for parent in parents:
            if parent is None or parent.binary or not left:
                continue
            lines = self._lines(parent.blob)
            if lines is None or len(lines) != len(parent.origins):
                continue  # the state does not describe this blob (should not happen); do not guess
            for i, j in matching_lines(lines, merged):
                if origins[j] is None:
                    origins[j] = parent.origins[i]
                    left -= 1
        return FileLines(entry.new_blob, [commit if o is None else o for o in origins])

    def _read(self, blob: bytes) -> bytes:
        """A blob's contents (the ids of the raw diff are bytes)."""
        return self._blobs.read(blob.decode("ascii"))

    def _lines(self, blob: bytes) -> list[bytes] | None:
        """A blob's lines as blame compares them (None for binary); merged files recur, so a few are
        cached."""
        cached = self._lines_cache.get(blob)
        if cached is not None:
            return cached
        content = self._read(blob)
        if b"\0" in content[:8000]:
            return None
        lines = [normalise(line, self.ignore_whitespace) for line in split_lines(content)]
        if len(self._lines_cache) >= 256:
            self._lines_cache.pop(next(iter(self._lines_cache)))
        self._lines_cache[blob] = lines
        return lines

    # -- streams ---------------------------------------------------------------------------------------------

    def _ordered(self, args: list[str], revisions: Sequence[str]) -> OrderedStream:
        return OrderedStream(self.repo, [*args, *revisions, "--"])
