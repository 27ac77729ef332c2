"""Exact line counts of file versions, from blob ids, without reading every file.

A text change's new version has ``lines(old) + added - deleted`` lines, so a full-history pass knows the size
of every version it produced. Only versions it never produced (made by a merge's conflict resolution, or the
parent of the first mined commit in just-in-time mode) are read, through one long-lived ``git cat-file
--batch`` process.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType

from defectops.errors import MissingObjectError
from defectops.mining.git import BASE_OPTIONS, GitRepo
from defectops.mining.records import Commit, FileChange

NULL_BLOB = "0" * 40


def count_lines(data: bytes) -> int:
    """Lines as diff counts them: a last line without a newline still counts."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


class BlobReader:
    """One ``git cat-file --batch`` process answering blob requests one at a time."""

    def __init__(self, repo: GitRepo) -> None:
        self._repo = repo
        self._proc: subprocess.Popen[bytes] | None = None

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", *BASE_OPTIONS, "-C", str(self._repo.path), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "LC_ALL": "C"},
            )
        return self._proc

    def read(self, sha: str) -> bytes:
        proc = self._process()
        stdin, stdout = proc.stdin, proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - Popen contract with PIPE
            raise MissingObjectError("git cat-file could not be started")
        stdin.write(sha.encode("ascii") + b"\n")
        stdin.flush()
        header = stdout.readline()
        parts = header.split()
        if len(parts) != 3:
            raise MissingObjectError(f"git: object {sha} is missing from the repository")
        size = int(parts[2])
        data = stdout.read(size)
        stdout.read(1)  # the newline after the contents
        return data

    def read_many(self, shas: list[str]) -> Iterator[tuple[str, bytes]]:
        """Many blobs in one round trip: requests are written by a thread while answers are read here."""
        if not shas:
            return
        proc = self._process()
        stdin, stdout = proc.stdin, proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - Popen contract with PIPE
            raise MissingObjectError("git cat-file could not be started")
        request = "".join(f"{sha}\n" for sha in shas).encode("ascii")

        def write() -> None:
            stdin.write(request)
            stdin.flush()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            for sha in shas:
                parts = stdout.readline().split()
                if len(parts) != 3:
                    raise MissingObjectError(f"git: object {sha} is missing from the repository")
                data = stdout.read(int(parts[2]))
                stdout.read(1)
                yield sha, data
        finally:
            writer.join()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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
