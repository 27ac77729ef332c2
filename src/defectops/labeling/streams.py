"""The three ``git log`` streams of the line pass (non-merge patches, merges' raw diffs, merges' combined
diffs), cut into one block per commit and handed out in the order the pass asks for them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from defectops.errors import GitError
from defectops.git import GitRepo
from defectops.labeling.diffs import DiffEntry, parse_commit_block


# The options that make ``git log -p`` diff as ``git blame`` does: Myers, no context, no hunk merging.
def patch_args(ignore_whitespace: bool) -> list[str]:
    """Non-merge commits: raw entries and ``-U0`` patches against the parent."""
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
    if ignore_whitespace:
        args.append("-w")
    return args


def combined_args(ignore_whitespace: bool) -> list[str]:
    """Merges that changed a file on both sides: git's own per-parent diffs, as blame uses them."""
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
    if ignore_whitespace:
        args.append("-w")
    return args


def merge_args() -> list[str]:
    """Merges: raw entries against the first parent (no patches; they are larger than all others)."""
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


class OrderedStream:
    """Commit blocks of one ``git log`` stream, handed out by sha in the order the pass asks for them."""

    def __init__(self, repo: GitRepo, args: list[str]) -> None:
        self._repo = repo
        self._args = args
        self._blocks: Iterator[bytes] | None = None
        self._chunks: Iterator[bytes] | None = None
        self._buffer: dict[str, bytes] = {}

    def take(self, sha: str, want_text: bool = False) -> list[DiffEntry]:
        return parse_commit_block(self.block(sha), want_text)[1]

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
