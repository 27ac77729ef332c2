"""Pieces of git's patch format that every patch reader needs: quoted paths, file headers, hunk headers.

git quotes a path C-style (``"a\\tb"``, ``"\\303\\251"``) when it contains control characters, quotes or
backslashes (and bytes above 0x7F unless ``core.quotepath=off``), and appends a TAB to an unquoted ``---``
or ``+++`` name that contains a space. A ``-U0`` hunk header ``@@ -a,b +c,d @@`` omits a count of 1.
"""

from __future__ import annotations

_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13}

_DEV_NULL = b"/dev/null"  # the name of the missing side of an added or deleted file


def unquote_path(raw: bytes) -> bytes:
    """Undo git's C-style quoting of unusual paths (``"a\\tb"``, ``"\\303\\251"``); plain paths pass
    through."""
    if not (raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2):
        return raw
    body = raw[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != 0x5C:  # backslash
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else 0x5C
        if 0x30 <= nxt <= 0x37:
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return bytes(out)


def header_name(line: bytes) -> bytes | None:
    """The name of a ``--- <name>`` or ``+++ <name>`` line, unquoted, with its ``a/``/``b/`` prefix; None
    for ``/dev/null``."""
    name = line[4:]
    if name == _DEV_NULL:
        return None
    if not name.startswith(b'"') and name.endswith(b"\t"):
        name = name[:-1]  # git appends a TAB to names with spaces
    return unquote_path(name)


def parse_hunk_header(line: bytes) -> tuple[int, int, int, int]:
    """``@@ -a,b +c,d @@ ...`` -> ``(a, b, c, d)``; an omitted count is 1."""
    parts = line.split(b" ", 3)
    old, new = parts[1][1:], parts[2][1:]
    a, _, b = old.partition(b",")
    c, _, d = new.partition(b",")
    return int(a), int(b) if b else 1, int(c), int(d) if d else 1
