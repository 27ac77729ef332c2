"""The changed lines of commits as text: what the hybrid model embeds beside the commit message.

One ``git log --no-walk --stdin -p -U0`` streams the patches of the asked commits (against their first
parent; a merge's patch is empty, and merges are never scored). Per commit the text is, file by file, the
file's path on a line of its own followed by its removed (``-``) and added (``+``) lines, in patch order.
A binary file contributes git's one ``Binary files ... differ`` line. The text is cut at ``max_chars``
characters: the encoder reads at most a few hundred tokens anyway, and the cost per commit stays bounded
however large the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from defectops.git.patch import header_name
from defectops.git.repo import GitRepo, decode_path, decode_text

#: Default bound of one commit's changed-lines text (about 1,000 WordPiece tokens of code).
MAX_CHARS = 4000
_START = b"\x00defectops-commit "


def _lines(chunks: Iterable[bytes]) -> Iterable[bytes]:
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        yield from whole
    if rest:
        yield rest


class _Text:
    """One commit's changed-lines text, cut at ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def add(self, line: str) -> None:
        if self.size >= self.limit:
            return
        line = line[: self.limit - self.size]
        self.parts.append(line)
        self.size += len(line) + 1

    def text(self) -> str:
        return "\n".join(self.parts)


def changed_lines(repo: GitRepo, shas: Sequence[str], *, max_chars: int = MAX_CHARS) -> dict[str, str]:
    """Per commit sha (full, as given), its changed lines as text (see the module); ``""`` for a commit
    without a patch (a merge, an empty commit)."""
    out: dict[str, str] = {}
    if not shas:
        return out
    wanted = list(dict.fromkeys(shas))
    stream = repo.stream(
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-p",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--format=%x00defectops-commit %H",
        stdin=("\n".join(wanted) + "\n").encode(),
    )
    current: _Text | None = None
    sha = ""
    in_hunk = False
    old_name: bytes | None = None
    for line in _lines(stream):
        if line.startswith(_START):
            if current is not None:
                out[sha] = current.text()
            sha, current, in_hunk = line[len(_START) :].decode("ascii").strip(), _Text(max_chars), False
            continue
        if current is None:
            continue
        if line.startswith((b"diff --git ", b"diff --cc ")):
            in_hunk, old_name = False, None
        elif not in_hunk and line.startswith(b"--- "):
            old_name = header_name(line)
        elif not in_hunk and line.startswith(b"+++ "):
            name = header_name(line) or old_name or b""
            current.add(decode_path(name[2:] if name[:2] in (b"a/", b"b/") else name))
        elif not in_hunk and line.startswith(b"Binary files "):
            current.add(decode_text(line))
        elif line.startswith(b"@@"):
            in_hunk = True
        elif in_hunk and line[:1] in (b"+", b"-"):
            current.add(decode_text(line))
    if current is not None:
        out[sha] = current.text()
    return {s: out.get(s, "") for s in wanted}
