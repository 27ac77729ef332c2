"""Parse the NUL-separated output of ``git log --raw --numstat -z`` into :class:`Commit` records.

Why this format: ``--raw`` gives change types, modes and blob ids (exact line counts without reading files),
``--numstat`` gives added/deleted lines, and ``-z`` keeps every path byte-exact (no quoting), so one streaming
git process yields everything the change metrics need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from defectops.errors import GitError
from defectops.git.records import ChangeType, Commit, FileChange
from defectops.git.repo import decode_path, decode_text

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

# Each commit starts with a header: the marker as a NUL-terminated field of its own.
_SEPARATOR = MARKER + b"\0"
_HEADER_FIELDS = 7  # sha, parents, name, email, author time, committer time, body
_CHANGE_TYPES: dict[str, ChangeType] = {t.value: t for t in ChangeType}


def _timestamp(raw: bytes) -> datetime:
    return datetime.fromtimestamp(int(raw or b"0"), tz=UTC)


class LogParser:
    """Incremental parser: feed it chunks of bytes in any sizes, it yields complete commits in order.

    The stream is cut into commits at the headers (one regex split per chunk, in C); a complete commit is
    then split into its NUL-delimited fields once. The last commit of a chunk stays pending until the next
    header (or :meth:`close`) shows that it is complete.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._started = False

    def feed(self, chunk: bytes) -> Iterator[Commit]:
        """Consume a chunk; yield every commit that is known to be complete."""
        parts = self._split(self._pending + chunk if self._pending else chunk)
        self._pending = parts.pop()
        return self._commits(parts)

    def _split(self, data: bytes) -> list[bytes]:
        """Cut at the headers. A marker counts only as a whole field: after the NUL that ends the previous
        commit (git may add newlines) or at the start of the stream. A message cannot contain NUL, so one
        that merely ends with the marker's text is glued back together here."""
        pieces = data.split(_SEPARATOR)
        parts = [pieces[0]]
        for piece in pieces[1:]:
            previous = parts[-1]
            end = len(previous)
            while end and previous[end - 1] == 0x0A:  # newlines
                end -= 1
            if (end and previous[end - 1] == 0) or (not self._started and len(parts) == 1 and not end):
                parts.append(piece)
            else:
                parts[-1] = previous + _SEPARATOR + piece
        return parts

    def close(self) -> Iterator[Commit]:
        """End of stream: yield the last commit."""
        data, self._pending = self._pending, b""
        return self._commits([data] if data or self._started else [])

    def _commits(self, parts: list[bytes]) -> Iterator[Commit]:
        for part in parts:
            if not self._started:
                self._started = True
                if part.strip(b"\n"):
                    raise GitError("git log output did not start with a commit header")
                continue
            yield _parse_commit(part)


def _parse_commit(part: bytes) -> Commit:
    """One commit: its header fields, then ``--raw`` entries, then ``--numstat`` entries in the same order."""
    fields = part.split(b"\0")
    if len(fields) < _HEADER_FIELDS:
        raise GitError("truncated git log header")
    sha, parents, name, email, atime, ctime, body = fields[:_HEADER_FIELDS]
    commit = Commit(
        sha=sha.decode("ascii"),
        parents=tuple(parents.decode("ascii").split()),
        author_name=decode_text(name),
        author_email=decode_text(email).strip().lower(),
        author_time=_timestamp(atime),
        committer_time=_timestamp(ctime),
        message=decode_text(body).rstrip("\n"),
    )
    files = commit.files
    n = len(fields)
    i = _HEADER_FIELDS
    # ":<old mode> <new mode> <old blob> <new blob> <status>" then one path, or two (old, new) for R/C.
    while i < n:
        token = fields[i]
        if token[:1] != b":":
            token = token.lstrip(b"\n")
            if not token:  # the format's own terminator and the newline before the first entry
                i += 1
                continue
            if token[:1] != b":":
                break
        meta = token[1:].decode("ascii").split(" ")
        if len(meta) != 5:
            raise GitError(f"unexpected git log raw line {token[:60]!r}")
        old_mode, new_mode, old_blob, new_blob, status = meta
        letter = status[:1]
        if letter == "R" or letter == "C":
            if i + 2 >= n:
                raise GitError("truncated git log raw entry")
            old_path: str | None = decode_path(fields[i + 1])
            path = decode_path(fields[i + 2])
            i += 3
        else:
            if i + 1 >= n:
                raise GitError("truncated git log raw entry")
            old_path = None
            path = decode_path(fields[i + 1])
            i += 2
        kind = _CHANGE_TYPES.get(letter, ChangeType.UNKNOWN)
        files.append(FileChange(path, old_path, kind, 0, 0, False, old_blob, new_blob, old_mode, new_mode))
    # "<added>\t<deleted>\t<path>", or "<added>\t<deleted>\t" NUL old NUL new for renames and copies;
    # binary files have "-" counts. The entries follow git's diff queue, as the raw ones do.
    count = 0
    while i < n:
        token = fields[i].lstrip(b"\n")
        i += 1
        if not token:
            continue
        stats = token.split(b"\t", 2)
        if len(stats) != 3:
            raise GitError(f"unexpected git log output near {token[:60]!r}")
        added, deleted, rest = stats
        if not rest:
            i += 2
        if count >= len(files):
            raise GitError("git log numstat without a matching raw line")
        change = files[count]
        count += 1
        if added.isdigit() and deleted.isdigit():
            change.added = int(added)
            change.deleted = int(deleted)
        elif (added == b"-" or added.isdigit()) and (deleted == b"-" or deleted.isdigit()):
            change.binary = True  # git prints "-" counts for binary files; such a change counts no lines
        else:
            raise GitError(f"unexpected git log numstat {token[:60]!r}")
    return commit


def parse_log(chunks: Iterable[bytes]) -> Iterator[Commit]:
    """Parse a whole ``git log`` stream given as an iterable of byte chunks."""
    parser = LogParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()
