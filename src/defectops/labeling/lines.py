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

import bisect
import difflib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat

from defectops.errors import GitError
from defectops.git import BlobReader, GitRepo, header_name, parse_hunk_header, unquote_path
from defectops.labeling.ignore_revs import ignored_commit_origins

ZERO_SHA = b"0" * 40
_WHITESPACE = b" \t\r\n\f\v"
_SUBMODULE = b"160000"


@dataclass(slots=True)
class FileLines:
    """One file of one commit: its blob id and the origin (commit index) of each of its lines."""

    blob: bytes
    origins: list[int]
    binary: bool = False


_MISSING = object()
Loader = Callable[[bytes], "FileLines | None"]


class LineState:
    """The files of one commit. ``loader`` fills in files on demand (a commit whose history was not
    streamed)."""

    __slots__ = ("files", "loader")

    def __init__(
        self, files: dict[bytes, FileLines | None] | None = None, loader: Loader | None = None
    ) -> None:
        self.files: dict[bytes, FileLines | None] = files if files is not None else {}
        self.loader = loader

    def get(self, path: bytes) -> FileLines | None:
        entry = self.files.get(path, _MISSING)
        if entry is _MISSING:
            if self.loader is None:
                return None
            loaded = self.loader(path)
            self.files[path] = loaded
            return loaded
        return entry  # type: ignore[return-value]

    def put(self, path: bytes, entry: FileLines) -> None:
        self.files[path] = entry

    def remove(self, path: bytes) -> None:
        if self.loader is None:
            self.files.pop(path, None)
        else:
            self.files[path] = None  # tombstone: do not ask the loader again

    def copy(self) -> LineState:
        return LineState(dict(self.files), self.loader)

    def items(self) -> Iterator[tuple[bytes, FileLines]]:
        """Known files (a lazy state yields only what it has loaded or changed)."""
        for path, entry in self.files.items():
            if entry is not None:
                yield path, entry


@dataclass(slots=True)
class DeletedLines:
    """Lines that a fix deleted or changed in one file, with their origins: one blame of that fix."""

    fix: int
    path: bytes
    new_path: bytes | None
    start: int
    origins: list[int]
    text: list[bytes]


@dataclass(slots=True)
class FileTouch:
    """What one non-merge commit did to one file (kept for fixes, to decide linkability and filters)."""

    status: str
    path: bytes
    old_path: bytes | None
    binary: bool
    added: int
    deleted: int


@dataclass
class TrackStats:
    commits: int = 0
    merges: int = 0
    merge_files_resolved: int = 0
    merge_files_aligned_here: int = 0
    lazy_files: int = 0
    desync_hunks: int = 0


@dataclass
class TrackResult:
    """Everything a pass produces: the tip's state, the deleted lines of every fix, and what fixes touched."""

    tip_state: LineState | None
    deleted: list[DeletedLines] = field(default_factory=list)
    touched: dict[int, list[FileTouch]] = field(default_factory=dict)
    stats: TrackStats = field(default_factory=TrackStats)


@dataclass(slots=True)
class _Entry:
    status: str
    old_mode: bytes
    new_mode: bytes
    old_blob: bytes
    new_blob: bytes
    old_path: bytes | None
    new_path: bytes
    hunks: list[tuple[int, int, int, int]] = field(default_factory=list)
    deleted_text: list[list[bytes]] = field(default_factory=list)
    binary: bool = False


# -- parsing -------------------------------------------------------------------------------------------------


def _parse_raw(line: bytes) -> _Entry:
    meta, _, paths = line.partition(b"\t")
    fields_ = meta.split(b" ")
    status = fields_[4][:1].decode("ascii")
    names = paths.split(b"\t")
    if status in ("R", "C") and len(names) >= 2:
        old_path: bytes | None = unquote_path(names[0])
        new_path = unquote_path(names[1])
    else:
        new_path = unquote_path(names[0])
        old_path = new_path
    return _Entry(
        status=status,
        old_mode=fields_[0][1:],
        new_mode=fields_[1],
        old_blob=fields_[2],
        new_blob=fields_[3],
        old_path=old_path,
        new_path=new_path,
    )


def _parse_commit_block(block: bytes, want_text: bool) -> tuple[str, list[_Entry]]:
    """One commit of ``git log --raw -p -U0 --full-index``: its sha and its files with their hunks.

    Content lines are skipped by the counts of their hunk header, so nothing inside a patch (a committed
    ``.patch`` file, a line starting with ``diff --git``) can be mistaken for structure.
    """
    lines = block.split(b"\n")
    sha = lines[0].strip().decode("ascii")
    entries: list[_Entry] = []
    pairs: dict[tuple[bytes, bytes], deque[_Entry]] = {}
    n = len(lines)
    i = 1
    while i < n and (not lines[i] or lines[i][:1] == b":"):
        line = lines[i]
        if line:
            entry = _parse_raw(line)
            entries.append(entry)
            if entry.status == "T":
                # git shows a type change as a deletion and an addition.
                pairs.setdefault((entry.old_blob, ZERO_SHA), deque()).append(entry)
                pairs.setdefault((ZERO_SHA, entry.new_blob), deque()).append(entry)
            else:
                pairs.setdefault((entry.old_blob, entry.new_blob), deque()).append(entry)
        i += 1
    current: _Entry | None = None
    while i < n:
        line = lines[i]
        first = line[:1]
        if first == b"@":
            a, b, c, d = parse_hunk_header(line)
            i += 1
            if current is not None:
                current.hunks.append((a, b, c, d))
                if want_text:
                    current.deleted_text.append([text[1:] for text in lines[i : i + b]])
            i += b
            if i < n and lines[i][:1] == b"\\":
                i += 1
            i += d
            if i < n and lines[i][:1] == b"\\":
                i += 1
            continue
        if first == b"d" and line.startswith(b"diff --git "):
            current = None
        elif first == b"i" and line.startswith(b"index "):
            span = line[6:].split(b" ", 1)[0]
            old_blob, _, new_blob = span.partition(b"..")
            queue = pairs.get((old_blob, new_blob))
            current = queue.popleft() if queue else None
        elif first == b"B" and line.startswith(b"Binary files ") and current is not None:
            current.binary = True
        i += 1
    return sha, entries


@dataclass(slots=True)
class CombinedFile:
    """One file of a merge's combined diff (``git log -c -p -U0``): for each parent, the pairs (parent line,
    merged line) that git's own diff keeps, inside the hunks; outside them every line is in every parent."""

    parents: int
    hunks: list[tuple[int, list[bytes]]] = field(default_factory=list)
    binary: bool = False
    paths: list[bytes | None] = field(default_factory=list)  # the file's path in each parent (renames)

    def parent_path(self, parent: int, default: bytes) -> bytes | None:
        """The path of this file in ``parent`` (None: absent there), as git's rename detection saw it."""
        if parent < len(self.paths):
            return self.paths[parent]
        return default

    def matches(self, parent: int, parent_size: int, merged_size: int) -> list[tuple[int, int]]:
        """(parent index, merged index) pairs of ``parent`` (0 = first parent), 0-based, in order.

        Positions come from the merged side of each hunk header and an offset carried through the hunks:
        between hunks every line is common to all parents, so only the hunks' own lines move the offset.
        (The parents' numbers in combined hunk headers are not reliable for empty ranges.)
        """
        pairs: list[tuple[int, int]] = []
        offset = 0  # parent index - merged index, outside hunks
        r_pos = 0
        for r_start, marks_lines in self.hunks:
            while r_pos < r_start and r_pos + offset < parent_size:
                pairs.append((r_pos + offset, r_pos))
                r_pos += 1
            r_pos = max(r_pos, r_start)
            p_pos = r_pos + offset
            for marks in marks_lines:
                if b"-" in marks:
                    if marks[parent] == 0x2D:  # "-": a line of this parent that the merge dropped
                        p_pos += 1
                    continue
                if marks[parent] == 0x20:  # " ": the merged line is this parent's line
                    pairs.append((p_pos, r_pos))
                    p_pos += 1
                r_pos += 1
            offset = p_pos - r_pos
        while r_pos < merged_size and r_pos + offset < parent_size:
            pairs.append((r_pos + offset, r_pos))
            r_pos += 1
        return pairs


def parse_combined_block(block: bytes) -> dict[bytes, CombinedFile]:
    """A merge's ``git log -c -p -U0`` output: the files that differ from every parent, with their hunks."""
    files: dict[bytes, CombinedFile] = {}
    current: CombinedFile | None = None
    in_hunk = False
    for line in block.split(b"\n")[1:]:
        if line.startswith((b"diff --combined ", b"diff --cc ")):
            path = unquote_path(line.split(b" ", 2)[2])
            current = None
            in_hunk = False
            files[path] = current = CombinedFile(parents=0)
            continue
        if current is None:
            continue
        if line.startswith(b"@@@"):
            head = line.split(b" @@", 1)[0]
            ats = len(head) - len(head.lstrip(b"@"))
            fields_ = head[ats:].split()
            current.parents = ats - 1
            # "+s,n": the hunk's lines come before merged line s (1-based), also when n is 0.
            start = int(fields_[ats - 1][1:].partition(b",")[0])
            current.hunks.append((max(start - 1, 0), []))
            in_hunk = True
            continue
        if in_hunk and current.parents and len(line) >= current.parents:
            marks = line[: current.parents]
            if marks.strip(b" +-") == b"":
                current.hunks[-1][1].append(marks)
                continue
        if not in_hunk and line.startswith(b"--- "):
            name = header_name(line)
            current.paths.append(name[2:] if name is not None and name.startswith(b"a/") else name)
            continue
        if line.startswith(b"Binary files "):
            current.binary = True
    return files


def iter_commit_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a ``--format=%x01%H`` log stream into one block per commit.

    ``\\x01`` at the start of a line never occurs in a patch (content lines start with ``+``, ``-`` or ``\\``,
    and git quotes control characters in paths). Chunks of a long commit are collected in a list and joined
    once, so a 100 MB commit costs one copy, not one per chunk.
    """
    parts: list[bytes] = []
    tail = b""  # the last byte of the previous chunk: a separator may straddle two chunks
    for chunk in chunks:
        if not chunk:
            continue
        start = 0
        probe = tail + chunk[:1] if tail else b""
        if probe == b"\n\x01":
            # the separator straddles chunks: the previous chunk ended the block (minus its newline)
            block = b"".join(parts)[:-1]
            parts = []
            if block:
                yield block[1:] if block.startswith(b"\x01") else block
            start = 1
        while True:
            pos = chunk.find(b"\n\x01", start)
            if pos < 0:
                parts.append(chunk[start:])
                break
            parts.append(chunk[start:pos])
            block = b"".join(parts)
            parts = []
            if block:
                yield block[1:] if block.startswith(b"\x01") else block
            start = pos + 2
        tail = chunk[-1:]
    block = b"".join(parts)
    if block.startswith(b"\x01"):
        block = block[1:]
    if block.strip():
        yield block


# -- line lists ----------------------------------------------------------------------------------------------


def apply_hunks(
    old: Sequence[int], hunks: Sequence[tuple[int, int, int, int]], commit: int, inherit: bool = False
) -> tuple[list[int], int]:
    """The origins after a commit's hunks; returns (origins, number of hunks that did not fit the old list).

    ``inherit``: the commit is ignored (ignore-revs); its lines take the origins of the lines they replaced.
    """
    out: list[int] = []
    pos = 0
    bad = 0
    size = len(old)
    for a, b, c, d in hunks:
        start = a - 1 if b else a
        if start < pos or start + b > size:
            bad += 1
            start = min(max(start, pos), size)
        if start > pos:
            out.extend(old[pos:start])
        if d:
            if c - 1 != len(out):
                bad += 1
            if inherit:
                out.extend(_inherited(old, start, b, d, commit))
            else:
                out.extend(repeat(commit, d))
        pos = min(start + b, size)
    if pos < size:
        out.extend(old[pos:])
    return out, bad


def _inherited(old: Sequence[int], start: int, b: int, d: int, commit: int) -> list[int]:
    if b:
        return [old[start + min(b - 1, (k * b) // d)] for k in range(d)]
    if start > 0:
        return [old[start - 1]] * d
    if start < len(old):
        return [old[start]] * d
    return [commit] * d


def normalise(line: bytes, ignore_whitespace: bool) -> bytes:
    """A line as blame compares it: with ``-w`` every whitespace byte is ignored."""
    return line.translate(None, _WHITESPACE) if ignore_whitespace else line.rstrip(b"\n")


def split_lines(content: bytes) -> list[bytes]:
    """A blob's lines as diff sees them (a last line without newline is still a line)."""
    if not content:
        return []
    parts = content.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return parts


def matching_lines(old: Sequence[bytes], new: Sequence[bytes]) -> list[tuple[int, int]]:
    """Pairs (old index, new index) of lines that a diff keeps, in order.

    Patience diff (common prefix and suffix, then the longest increasing run of lines unique on both sides as
    anchors, recursively; difflib only for small gaps without anchors): near-linear, unlike difflib on whole
    files, and it agrees with git's Myers diff wherever the alignment is unambiguous.
    """
    ids: dict[bytes, int] = {}
    a = [ids.setdefault(line, len(ids)) for line in old]
    b = [ids.setdefault(line, len(ids)) for line in new]
    out: list[tuple[int, int]] = []
    _match(a, 0, len(a), b, 0, len(b), out, 0)
    return out


_SMALL_GAP = 40_000


def _match(
    a: list[int], alo: int, ahi: int, b: list[int], blo: int, bhi: int, out: list[tuple[int, int]], depth: int
) -> None:
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        out.append((alo, blo))
        alo += 1
        blo += 1
    tail: list[tuple[int, int]] = []
    while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:
        ahi -= 1
        bhi -= 1
        tail.append((ahi, bhi))
    if alo < ahi and blo < bhi:
        anchors = _unique_anchors(a, alo, ahi, b, blo, bhi) if depth < 64 else []
        if anchors:
            pa, pb = alo, blo
            for i, j in anchors:
                _match(a, pa, i, b, pb, j, out, depth + 1)
                out.append((i, j))
                pa, pb = i + 1, j + 1
            _match(a, pa, ahi, b, pb, bhi, out, depth + 1)
        elif (ahi - alo) * (bhi - blo) <= _SMALL_GAP:
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            for block in matcher.get_matching_blocks():
                out.extend((alo + block.a + k, blo + block.b + k) for k in range(block.size))
    out.extend(reversed(tail))


def _unique_anchors(
    a: list[int], alo: int, ahi: int, b: list[int], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """The longest increasing sequence of lines that occur exactly once on each side (patience sorting)."""
    count_a: dict[int, int] = {}
    for i in range(alo, ahi):
        count_a[a[i]] = count_a.get(a[i], 0) + 1
    count_b: dict[int, int] = {}
    where_b: dict[int, int] = {}
    for j in range(blo, bhi):
        line = b[j]
        count_b[line] = count_b.get(line, 0) + 1
        where_b[line] = j
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and count_b.get(a[i]) == 1]
    if not pairs:
        return []
    tops: list[int] = []  # j of the smallest tail of each pile
    top_index: list[int] = []
    back: list[int] = [-1] * len(pairs)
    for k, (_i, j) in enumerate(pairs):
        pile = bisect.bisect_left(tops, j)
        if pile == len(tops):
            tops.append(j)
            top_index.append(k)
        else:
            tops[pile] = j
            top_index[pile] = k
        back[k] = top_index[pile - 1] if pile else -1
    chain: list[tuple[int, int]] = []
    k = top_index[-1]
    while k >= 0:
        chain.append(pairs[k])
        k = back[k]
    chain.reverse()
    return chain


# -- the pass ------------------------------------------------------------------------------------------------


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

    # The options that make ``git log -p`` diff as ``git blame`` does: Myers, no context, no hunk merging.
    def _patch_args(self) -> list[str]:
        args = [
            "log",
            "--no-merges",
            "--topo-order",
            "--reverse",
            "--format=%x01%H",
            "--raw",
            "-p",
            "-U0",
            "--inter-hunk-context=0",
            "--no-abbrev",
            "--full-index",
            "-M",
            "--diff-algorithm=myers",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--submodule=short",
        ]
        if self.ignore_whitespace:
            args.append("-w")
        return args

    def _combined_args(self) -> list[str]:
        # Merges that changed a file on both sides: git's own per-parent diffs, as blame uses them.
        args = [
            "log",
            "--merges",
            "--topo-order",
            "--reverse",
            "--format=%x01%H",
            "-c",
            "--combined-all-paths",
            "-p",
            "-U0",
            "--inter-hunk-context=0",
            "-M",
            "--diff-algorithm=myers",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
        ]
        if self.ignore_whitespace:
            args.append("-w")
        return args

    @staticmethod
    def _merge_args() -> list[str]:
        return [
            "log",
            "--merges",
            "--topo-order",
            "--reverse",
            "--format=%x01%H",
            "--diff-merges=first-parent",
            "--raw",
            "--no-abbrev",
            "-M",
            "--no-ext-diff",
            "--no-color",
        ]

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
        patches = self._ordered(self._patch_args(), revisions)
        merges = self._ordered(self._merge_args(), revisions)
        combined = self._ordered(self._combined_args(), revisions)
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
        self, commit: int, state: LineState, entries: list[_Entry], result: TrackResult
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

    def _ignored_origins(self, commit: int, entry: _Entry, old: FileLines) -> list[int]:
        """An ignore-revs commit: its new lines take the origins of the lines git's blame would match."""
        parent_lines = split_lines(self._read(entry.old_blob))
        if len(parent_lines) != len(old.origins):
            # The state does not describe the parent blob (should not happen): the nearest-line rule.
            return apply_hunks(old.origins, entry.hunks, commit, inherit=True)[0]
        target_lines = split_lines(self._read(entry.new_blob))
        return ignored_commit_origins(old.origins, entry.hunks, parent_lines, target_lines, commit)

    def _record(self, commit: int, entry: _Entry, old: FileLines, result: TrackResult) -> None:
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
        entries: list[_Entry],
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
        self, commit: int, entry: _Entry, first: FileLines | None, others: list[LineState]
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
            resolved = self._resolve_combined(commit, combined, parents)
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

    @staticmethod
    def _resolve_combined(
        commit: int, combined: CombinedFile, parents: list[FileLines | None]
    ) -> list[int] | None:
        """Origins of a merged file from its combined diff; None if the diff does not fit the known
        parents."""
        size = None
        for k, parent in enumerate(parents):
            if parent is None:
                continue
            # The parent's lines inside the hunks: merged lines it has (" ") and lines the merge dropped
            # ("-").
            p_lines = sum(
                1 for _, marks in combined.hunks for m in marks if m[k] == (0x2D if b"-" in m else 0x20)
            )
            r_lines = sum(1 for _, marks in combined.hunks for m in marks if b"-" not in m)
            size = len(parent.origins) - p_lines + r_lines
            break
        if size is None:
            size = sum(1 for _, marks in combined.hunks for m in marks if b"-" not in m)
        if size < 0:
            return None
        origins: list[int | None] = [None] * size
        for k, parent in enumerate(parents):
            if parent is None or parent.binary:
                continue
            known = parent.origins
            for i, j in combined.matches(k, len(known), size):
                if j < size and i < len(known) and origins[j] is None:
                    origins[j] = known[i]
        return [commit if o is None else o for o in origins]

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

    def _ordered(self, args: list[str], revisions: Sequence[str]) -> _OrderedStream:
        return _OrderedStream(self.repo, [*args, *revisions, "--"])


class _OrderedStream:
    """Commit blocks of one ``git log`` stream, handed out by sha in the order the pass asks for them."""

    def __init__(self, repo: GitRepo, args: list[str]) -> None:
        self._repo = repo
        self._args = args
        self._blocks: Iterator[bytes] | None = None
        self._chunks: Iterator[bytes] | None = None
        self._buffer: dict[str, bytes] = {}

    def take(self, sha: str, want_text: bool = False) -> list[_Entry]:
        return _parse_commit_block(self.block(sha), want_text)[1]

    def block(self, sha: str) -> bytes:
        block = self._buffer.pop(sha, None)
        if block is None:
            block = self._next(sha)
        return block

    def _next(self, sha: str) -> bytes:
        if self._blocks is None:
            self._chunks = self._repo.stream(*self._args)
            self._blocks = iter_commit_blocks(self._chunks)
        prefix = sha.encode("ascii")
        for block in self._blocks:
            if block.startswith(prefix):
                return block
            head = block.split(b"\n", 1)[0].strip().decode("ascii", "replace")
            self._buffer[head] = block
        raise GitError(f"git log did not report commit {sha}")

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
