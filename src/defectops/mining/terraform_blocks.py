"""Where each Terraform block of a ``.tf`` file lies (its lines), and what it holds, for block-level risk.

:mod:`defectops.mining.terraform` measures a file's blocks by address and content hash; block-level labels
and features also need each block's *lines* (to map the lines SZZ traced, and the lines a commit changed, to
the block that held them) and its members (to say which attributes a change added, removed or changed).

The file is cut into top-level items by the same scanner as the metrics
(:func:`defectops.mining.terraform.split_top_level`); each item is parsed on its own (HCL2, else HCL1) and
remembered by its text. An item's span runs from its first line to its last line that is neither blank nor a
whole-line comment (comments before the next block belong to no block). A ``locals`` block is cut
further, one span per local value (``local.<name>``), by scanning its body the same way; when that is not
possible every value of the block gets the whole block's span. Addresses, and their ``#2``, ``#3`` for
repeated ones, are exactly those of :func:`defectops.mining.terraform.parse_terraform`. A file the scanner
cannot cut has no spans (None): callers count it, never guess.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from defectops.errors import TerraformParseError
from defectops.mining.terraform import (
    _TOP_LEVEL_KIND,
    OTHER_KIND,
    _address,
    _blocks_of,
    _fingerprint,
    _is_meta,
    _loads,
    _loads_hcl1,
    _strip_meta,
    _walk_body,
    split_top_level,
)

_LOCAL_NAME: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)\s*=")


@dataclass(frozen=True, slots=True)
class BlockSpan:
    """One addressable block of a file: where it is (1-based, inclusive lines) and what it holds.

    ``block_type`` is the resource or data source type for ``resource``/``data`` blocks (``aws_iam_role``),
    the provider name for ``provider`` blocks, else the block keyword (``module``, ``variable``, ``locals``,
    ``terraform``, ...). ``provider`` is the prefix of a resource/data type (``aws``), the provider name of a
    ``provider`` block, else empty. ``attributes`` and ``depth`` are counted as in
    :class:`~defectops.mining.terraform.TerraformMetrics` for this block alone (a local value: 1 and 0).
    ``members`` maps each name directly in the block (attributes and nested block types) to a hash of its
    content, so two revisions of a block tell which members were added, removed or changed.
    """

    address: str
    kind: str
    block_type: str
    provider: str
    first_line: int
    last_line: int
    attributes: int
    depth: int
    members: Mapping[str, str]

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1


@dataclass(frozen=True, slots=True)
class _Item:
    address: str
    kind: str
    block_type: str
    provider: str
    first: int  # 0-based line offsets inside the piece
    last: int
    attributes: int
    depth: int
    members: tuple[tuple[str, str], ...]


def _code_line(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(("#", "//"))


def _last_code_line(lines: list[str], first: int, end: int) -> int:
    """The last line in ``[first, end)`` that is code, or ``first`` if none is."""
    for k in range(end - 1, first - 1, -1):
        if _code_line(lines[k]):
            return k
    return first


def _local_spans(lines: list[str], last: int) -> dict[str, tuple[int, int]] | None:
    """Spans of the values of a ``locals`` block whose lines are ``lines[0..last]`` (``last`` the ``}``)."""
    if last < 2:
        return None
    body = lines[1:last]
    dedented = textwrap.dedent("".join(body))
    pieces = split_top_level(dedented)
    if pieces is None:
        return None
    spans: dict[str, tuple[int, int]] = {}
    offset = 1
    for piece in pieces:
        piece_lines = piece.splitlines(keepends=True)
        first = next((k for k, line in enumerate(piece_lines) if _code_line(line)), None)
        if first is not None:
            match = _LOCAL_NAME.match(piece_lines[first])
            if match is None or piece_lines[first][:1].isspace():
                return None
            end = _last_code_line(piece_lines, first, len(piece_lines))
            spans[match.group(1)] = (offset + first, offset + end)
        offset += len(piece_lines)
    return spans


def _type_and_provider(block_type: str, labels: list[str]) -> tuple[str, str]:
    if block_type in ("resource", "data") and labels:
        return labels[0], labels[0].split("_", 1)[0]
    if block_type == "provider" and labels:
        return labels[0], labels[0]
    return block_type, ""


def _members(body: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((key, _fingerprint(value)) for key, value in body.items() if not _is_meta(key))


@lru_cache(maxsize=32768)
def _items(piece: str) -> tuple[_Item, ...]:
    """The blocks of one top-level piece (normally one), remembered by its text."""
    try:
        tree = _loads(piece)
    except TerraformParseError as exc:
        tree = _loads_hcl1(piece, exc)
    lines = piece.splitlines(keepends=True) or [""]
    last = _last_code_line(lines, 0, len(lines))
    items: list[_Item] = []
    for keyword, value in tree.items():
        if _is_meta(keyword):
            continue
        found = _blocks_of(value)
        if found is None:
            continue
        kind = _TOP_LEVEL_KIND.get(keyword, OTHER_KIND)
        for labels, body in found:
            block_type, provider = _type_and_provider(keyword, labels)
            if kind == "locals":
                names = [name for name in body if not _is_meta(name)]
                spans = _local_spans(lines, last) if len(found) == 1 else None
                if spans is not None and set(spans) != set(names):
                    spans = None
                for name in names:
                    first, end = spans[name] if spans is not None else (0, last)
                    items.append(
                        _Item(
                            f"local.{name}",
                            kind,
                            "locals",
                            "",
                            first,
                            end,
                            1,
                            0,
                            ((name, _fingerprint(body[name])),),
                        )
                    )
                continue
            attributes, depth = _walk_body(body, 1)
            items.append(
                _Item(
                    _address(keyword, labels, body),
                    kind,
                    block_type,
                    provider,
                    0,
                    last,
                    attributes,
                    depth,
                    _members(_strip_meta(body)),
                )
            )
    return tuple(items)


def block_spans(text: str) -> tuple[BlockSpan, ...] | None:
    """The blocks of one ``.tf`` file in file order, with their lines; None when the file cannot be cut
    into top-level items or an item parses neither as HCL2 nor as HCL1."""
    pieces = split_top_level(text)
    if pieces is None:
        return None
    spans: list[BlockSpan] = []
    seen: set[str] = set()
    line = 1
    for piece in pieces:
        try:
            items = _items(piece)
        except TerraformParseError:
            return None
        for item in items:
            key = item.address
            n = 1
            while key in seen:
                n += 1
                key = f"{item.address}#{n}"
            seen.add(key)
            spans.append(
                BlockSpan(
                    address=key,
                    kind=item.kind,
                    block_type=item.block_type,
                    provider=item.provider,
                    first_line=line + item.first,
                    last_line=line + item.last,
                    attributes=item.attributes,
                    depth=item.depth,
                    members=MappingProxyType(dict(item.members)),
                )
            )
        line += piece.count("\n")
    return tuple(spans)


def block_at_lines(spans: tuple[BlockSpan, ...], lines: list[int]) -> dict[str, list[int]]:
    """Which blocks hold each of ``lines`` (1-based): address -> its lines. A line of a ``locals`` block that
    could not be cut per value is under every value of the block; lines outside every block are under the
    empty address ``""``."""
    found: dict[str, list[int]] = {}
    for number in lines:
        holders = [span.address for span in spans if span.first_line <= number <= span.last_line]
        for address in holders or [""]:
            found.setdefault(address, []).append(number)
    return found


def clear_span_cache() -> None:
    """Forget every remembered item (memory, or a fair benchmark between repositories)."""
    _items.cache_clear()
