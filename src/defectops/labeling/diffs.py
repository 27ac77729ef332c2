"""The diffs the line pass reads, parsed: per commit, each file's raw entry (modes, blobs, paths) with its
``-U0`` hunks, and for merges, git's combined diff of the files that differ from every parent."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from defectops.git import header_name, parse_hunk_header, unquote_path

ZERO_SHA = b"0" * 40


@dataclass(slots=True)
class DiffEntry:
    """One file of a commit's raw diff, with its hunks ``(a, b, c, d)`` (``@@ -a,b +c,d @@``)."""

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


def _parse_raw(line: bytes) -> DiffEntry:
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
    return DiffEntry(
        status=status,
        old_mode=fields_[0][1:],
        new_mode=fields_[1],
        old_blob=fields_[2],
        new_blob=fields_[3],
        old_path=old_path,
        new_path=new_path,
    )


def parse_commit_block(block: bytes, want_text: bool) -> tuple[str, list[DiffEntry]]:
    """One commit of ``git log --raw -p -U0 --full-index``: its sha and its files with their hunks.

    Content lines are skipped by the counts of their hunk header, so nothing inside a patch (a committed
    ``.patch`` file, a line starting with ``diff --git``) can be mistaken for structure.
    """
    lines = block.split(b"\n")
    sha = lines[0].strip().decode("ascii")
    entries: list[DiffEntry] = []
    pairs: dict[tuple[bytes, bytes], deque[DiffEntry]] = {}
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
    current: DiffEntry | None = None
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
