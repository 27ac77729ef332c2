"""Exact line counts of file versions, from blob ids, without reading every file.

A text change's new version has ``lines(old) + added - deleted`` lines, so a full-history pass knows the size
of every version it produced. Only versions it never produced (made by a merge's conflict resolution, or the
parent of the first mined commit in just-in-time mode) are read, through one long-lived ``git cat-file
--batch`` process (:class:`~defectops.git.blobs.BlobReader`).
"""

from __future__ import annotations

from collections.abc import Iterable

from defectops.git import BlobReader, Commit, FileChange

NULL_BLOB = "0" * 40


def count_lines(data: bytes) -> int:
    """Lines as diff counts them: a last line without a newline still counts."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


class LineCounts:
    """Line counts by blob id: remembered for versions the history produced, read from git otherwise."""

    def __init__(self, reader: BlobReader) -> None:
        self._reader = reader
        self._known: dict[str, int] = {}
        self.blobs_read = 0

    def before(self, change: FileChange) -> int:
        """Lines of the file before ``change`` (0 for an added file or a binary change)."""
        if change.binary or change.old_blob == NULL_BLOB:
            return 0
        known = self._known.get(change.old_blob)
        if known is None:
            known = count_lines(self._reader.read(change.old_blob))
            self.blobs_read += 1
            self._known[change.old_blob] = known
        return known

    def prefetch(self, commits: Iterable[Commit]) -> None:
        """Read, in one batch, every old version these commits need that no earlier commit produced."""
        produced: set[str] = set()
        missing: dict[str, None] = {}
        for commit in commits:
            if commit.is_merge:
                continue
            for change in commit.files:
                if change.is_submodule:
                    continue
                old = change.old_blob
                if not change.binary and old != NULL_BLOB and old not in self._known and old not in produced:
                    missing[old] = None
                if not change.binary and change.new_blob != NULL_BLOB:
                    produced.add(change.new_blob)
        for sha, data in self._reader.read_many(list(missing)):
            self._known[sha] = count_lines(data)
            self.blobs_read += 1

    def record(self, change: FileChange, before: int) -> None:
        """Remember the size of the version ``change`` produced."""
        if change.binary or change.new_blob == NULL_BLOB:
            return
        self._known[change.new_blob] = before + change.added - change.deleted
