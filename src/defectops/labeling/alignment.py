"""Line lists: the origins after a commit's hunks, lines as blame compares them, and the alignment of two
versions of a file (patience diff) where git's own diff is not at hand."""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence
from itertools import repeat

from defectops.labeling.diffs import CombinedFile
from defectops.labeling.origins import FileLines

_WHITESPACE = b" \t\r\n\f\v"


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


def combined_origins(
    commit: int, combined: CombinedFile, parents: list[FileLines | None]
) -> list[int] | None:
    """Origins of a merged file from its combined diff; None if the diff does not fit the known parents."""
    size = None
    for k, parent in enumerate(parents):
        if parent is None:
            continue
        # The parent's lines inside the hunks: merged lines it has (" ") and lines the merge dropped ("-").
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
