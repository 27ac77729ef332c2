"""Parse the NUL-separated output of ``git log --raw --numstat -z`` into :class:`Commit` records.

Why this format: ``--raw`` gives change types, modes and blob ids (exact line counts without reading files),
``--numstat`` gives added/deleted lines, and ``-z`` keeps every path byte-exact (no quoting), so one streaming
git process yields everything the change metrics need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from defectops.errors import GitError
from defectops.mining.git import decode_path, decode_text
from defectops.mining.records import ChangeType, Commit, FileChange

MARKER = b"\x01defectops\x01"
# One header per commit: marker, sha, parents, mailmapped author name and email, author and committer time,
# raw body. Fields are NUL-terminated; a commit message cannot contain NUL.
LOG_FORMAT = "--format=%x01defectops%x01%x00%H%x00%P%x00%aN%x00%aE%x00%at%x00%ct%x00%B%x00"
LOG_OPTIONS: tuple[str, ...] = (
    "log",
    LOG_FORMAT,
    "--raw",
    "--numstat",
    "-z",
    "-M",
    "--no-abbrev",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--encoding=UTF-8",
    "--diff-merges=off",
)

_NUMSTAT = re.compile(rb"^(\d+|-)\t(\d+|-)\t(.*)$", re.DOTALL)
_HEADER_FIELDS = 7  # sha, parents, name, email, author time, committer time, body


def _timestamp(raw: bytes) -> datetime:
    return datetime.fromtimestamp(int(raw or b"0"), tz=UTC)


class LogParser:
    """Incremental parser: feed it chunks of bytes in any sizes, it yields complete commits in order."""

    def __init__(self) -> None:
        self._pending = b""
        self._tokens: list[bytes] = []
        self._current: Commit | None = None
        self._raw_queue: list[FileChange] = []
        self._numstat_index = 0

    def feed(self, chunk: bytes) -> Iterator[Commit]:
        """Consume a chunk; yield every commit that is known to be complete."""
        data = self._pending + chunk
        parts = data.split(b"\0")
        self._pending = parts.pop()  # the last part may be incomplete
        self._tokens.extend(parts)
        yield from self._drain(final=False)

    def close(self) -> Iterator[Commit]:
        """End of stream: yield the last commit."""
        if self._pending:
            self._tokens.append(self._pending)
            self._pending = b""
        yield from self._drain(final=True)
        if self._current is not None:
            yield self._finish()

    # A commit is complete once the next header's marker is seen, so headers are only parsed when all seven
    # fields are present; the body is one token because messages cannot contain NUL.
    def _drain(self, final: bool) -> Iterator[Commit]:
        tokens = self._tokens
        i = 0
        n = len(tokens)
        while i < n:
            token = tokens[i]
            stripped = token.lstrip(b"\n")
            if stripped == MARKER:
                if n - i - 1 < _HEADER_FIELDS and not final:
                    break
                if self._current is not None:
                    yield self._finish()
                self._start(tokens[i + 1 : i + 1 + _HEADER_FIELDS])
                i += 1 + _HEADER_FIELDS
                continue
            if self._current is None:
                if stripped:
                    raise GitError("git log output did not start with a commit header")
                i += 1
                continue
            if stripped.startswith(b":"):
                # ":<old mode> <new mode> <old sha> <new sha> <status>" then one path, or two for R/C.
                fields = stripped[1:].split(b" ")
                status = fields[4][:1].decode() if len(fields) > 4 else "X"
                npaths = 2 if status in ("R", "C") else 1
                if n - i - 1 < npaths and not final:
                    break
                paths = tokens[i + 1 : i + 1 + npaths]
                self._raw_queue.append(_raw_change(fields, status, paths))
                i += 1 + npaths
                continue
            match = _NUMSTAT.match(stripped)
            if match is not None:
                rest = match.group(3)
                extra = 2 if rest == b"" else 0  # renames: "a\td\t" NUL old NUL new
                if n - i - 1 < extra and not final:
                    break
                self._apply_numstat(match.group(1), match.group(2))
                i += 1 + extra
                continue
            if stripped:
                raise GitError(f"unexpected git log output near {stripped[:60]!r}")
            i += 1
        del tokens[:i]

    def _start(self, fields: list[bytes]) -> None:
        if len(fields) < _HEADER_FIELDS:
            raise GitError("truncated git log header")
        sha, parents, name, email, atime, ctime, body = fields
        self._current = Commit(
            sha=sha.decode("ascii"),
            parents=tuple(p.decode("ascii") for p in parents.split()),
            author_name=decode_text(name),
            author_email=decode_text(email).strip().lower(),
            author_time=_timestamp(atime),
            committer_time=_timestamp(ctime),
            message=decode_text(body).rstrip("\n"),
        )
        self._raw_queue = []
        self._numstat_index = 0

    def _apply_numstat(self, added: bytes, deleted: bytes) -> None:
        # numstat lines come in the same order as raw lines (both follow git's diff queue order).
        if self._numstat_index >= len(self._raw_queue):
            raise GitError("git log numstat without a matching raw line")
        change = self._raw_queue[self._numstat_index]
        self._numstat_index += 1
        if added == b"-" or deleted == b"-":
            change.binary = True
            change.added = change.deleted = 0
        else:
            change.added = int(added)
            change.deleted = int(deleted)

    def _finish(self) -> Commit:
        commit = self._current
        if commit is None:  # pragma: no cover - guarded by callers
            raise GitError("no commit to finish")
        commit.files = self._raw_queue
        self._current = None
        self._raw_queue = []
        return commit


def _raw_change(fields: list[bytes], status: str, paths: list[bytes]) -> FileChange:
    old_mode, new_mode, old_blob, new_blob = b" ".join(fields[:4]).decode("ascii").split(" ")
    try:
        change_type = ChangeType(status)
    except ValueError:
        change_type = ChangeType.UNKNOWN
    if len(paths) == 2:
        old_path: str | None = decode_path(paths[0])
        path = decode_path(paths[1])
    else:
        old_path = None
        path = decode_path(paths[0])
    return FileChange(
        path=path,
        old_path=old_path,
        change_type=change_type,
        added=0,
        deleted=0,
        binary=False,
        old_blob=old_blob,
        new_blob=new_blob,
        old_mode=old_mode,
        new_mode=new_mode,
    )


def parse_log(chunks: Iterable[bytes]) -> Iterator[Commit]:
    """Parse a whole ``git log`` stream given as an iterable of byte chunks."""
    parser = LogParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()
