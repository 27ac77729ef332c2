"""File contents by blob id, through one long-lived ``git cat-file --batch`` process.

The miner (line counts of versions it never produced), the code metrics (the files to measure) and the line
tracker of the labeler (merged files, ignore-revs parents) all read blobs this way: one process per reader,
started on first use, with a batch of requests written at once so that git never waits for Python between
two answers.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import IO, Final, overload

from defectops.config import child_environment
from defectops.errors import GitError, MissingObjectError
from defectops.git.repo import _GIT_ENV, BASE_OPTIONS, GitRepo

# A batch of requests up to this size is written straight away: it fits in any pipe's buffer, so the write
# cannot block while git waits for its answers to be read. A longer one is written by a thread.
_DIRECT_WRITE: Final = 4096
# Answers over the size limit are read past in chunks of this size.
_SKIP_CHUNK: Final = 1 << 20


class BlobReader:
    """One ``git cat-file --batch`` process, started on first use and stopped by :meth:`close`.

    ``blobs_only`` refuses objects that are not file contents (a submodule's commit, a tree) with a
    :class:`GitError`; otherwise they are returned as git prints them. An object the repository does not have
    is a :class:`MissingObjectError`. After an error, or a :meth:`read_many` left before its end, the process
    is ended (its answers are out of step with the requests) and the next read starts a new one.
    """

    def __init__(self, repo: GitRepo, *, blobs_only: bool = False) -> None:
        self._repo = repo
        self._blobs_only = blobs_only
        self._proc: subprocess.Popen[bytes] | None = None
        self._err: IO[bytes] | None = None

    def _pipes(self) -> tuple[subprocess.Popen[bytes], IO[bytes], IO[bytes]]:
        if self._proc is None:
            self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            self._proc = subprocess.Popen(
                ["git", *BASE_OPTIONS, "-C", str(self._repo.path), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._err,
                env=child_environment(_GIT_ENV),
            )
        proc = self._proc
        if proc.stdin is None or proc.stdout is None:  # pragma: no cover - Popen contract with PIPE
            raise GitError("git cat-file: could not open pipes")
        return proc, proc.stdin, proc.stdout

    def read(self, oid: str) -> bytes:
        """The contents of blob ``oid``."""
        proc, stdin, stdout = self._pipes()
        try:
            self._send(stdin, oid.encode("ascii") + b"\n")
            return self._body(stdout, self._size(stdout, oid))
        except BaseException:
            self._abandon(proc)
            raise

    @overload
    def read_many(self, oids: Sequence[str]) -> Iterator[tuple[str, bytes]]: ...

    @overload
    def read_many(self, oids: Sequence[str], max_bytes: int) -> Iterator[tuple[str, bytes | None]]: ...

    def read_many(
        self, oids: Sequence[str], max_bytes: int | None = None
    ) -> Iterator[tuple[str, bytes | None]]:
        """``(oid, contents)`` for each of ``oids`` in order, all requested in one round trip; the contents
        are None for a blob over ``max_bytes`` (read past, not kept)."""
        if not oids:
            return
        proc, stdin, stdout = self._pipes()
        request = "".join(f"{oid}\n" for oid in oids).encode("ascii")
        writer = None
        done = False
        try:
            if len(request) <= _DIRECT_WRITE:
                self._send(stdin, request)
            else:
                writer = threading.Thread(target=_write_quietly, args=(stdin, request), daemon=True)
                writer.start()
            for oid in oids:
                size = self._size(stdout, oid)
                if max_bytes is not None and size > max_bytes:
                    self._skip(stdout, size + 1)
                    yield oid, None
                else:
                    yield oid, self._body(stdout, size)
            done = True
        finally:
            if not done:
                self._abandon(proc)
            if writer is not None:
                writer.join()

    def _send(self, stdin: IO[bytes], request: bytes) -> None:
        try:
            stdin.write(request)
            stdin.flush()
        except BrokenPipeError as exc:
            raise self._stopped() from exc

    def _size(self, stdout: IO[bytes], oid: str) -> int:
        header = stdout.readline()
        parts = header.split()
        if len(parts) == 3 and (parts[1] == b"blob" or not self._blobs_only):
            return int(parts[2])
        if not header.endswith(b"\n"):
            raise self._stopped()
        if len(parts) == 2 and parts[1] == b"missing":
            raise MissingObjectError(f"git: object {oid} is missing from the repository (try `git fsck`)")
        if len(parts) == 2 and parts[1] == b"ambiguous":
            raise MissingObjectError(f"git: object name {oid} is ambiguous")
        if len(parts) == 3:
            kind = parts[1].decode("ascii", "replace")
            raise GitError(f"git: object {oid} is a {kind}, not a file's content")
        raise GitError(f"git cat-file: unexpected answer {header[:80]!r}")

    def _body(self, stdout: IO[bytes], size: int) -> bytes:
        data = stdout.read(size)
        if len(data) != size or stdout.read(1) != b"\n":
            raise self._stopped()
        return data

    def _skip(self, stdout: IO[bytes], remaining: int) -> None:
        while remaining:
            got = stdout.read(min(remaining, _SKIP_CHUNK))
            if not got:
                raise self._stopped()
            remaining -= len(got)

    def _stopped(self) -> GitError:
        message = ""
        if self._err is not None:
            self._err.seek(0)
            text = self._err.read().decode("utf-8", errors="replace").strip()
            message = text.splitlines()[0] if text else ""
        return GitError(f"git cat-file stopped: {message or 'no message'}")

    def _abandon(self, proc: subprocess.Popen[bytes]) -> None:
        """End ``proc`` if it is still this reader's: answers to requests nobody reads are still queued."""
        if proc is self._proc:
            proc.kill()
            self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # Closing stdout first ends git even when it is blocked writing an answer nobody will read (and a
            # writer thread blocked on a full stdin with it); EOF on stdin ends it otherwise.
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._err is not None:
            self._err.close()
            self._err = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _write_quietly(stdin: IO[bytes], request: bytes) -> None:
    """A writer thread's work: a failed write shows up, with git's message, where the answers are read."""
    with contextlib.suppress(OSError, ValueError):
        stdin.write(request)
        stdin.flush()
