"""Block-level metrics of Terraform (``.tf``) files, and what a commit changed in them.

Why blocks and not lines: in Terraform the unit of risk is the block a change touches (a resource that is
replaced, a module whose inputs move, a variable that disappears), not a line count. Files are parsed with
python-hcl2 (v8 API: ``hcl2.loads(text, serialization_options=...)`` returns a dict in which every block body
carries ``"__is_block__": True`` and labels keep their quotes, e.g. ``{"resource": [{'"aws_s3_bucket"':
{'"logs"': {..., "__is_block__": True}}}]}``); each top-level block is keyed by its Terraform address and
fingerprinted by a hash of its canonical content, so formatting and comments never count as a change.

Why parsing is incremental: python-hcl2 (a pure-Python LALR parser) needs ~10 ms per kB, and a commit
usually touches a few blocks of a large file. So a cheap scanner cuts a file into top-level items (at a
newline outside any bracket, string, heredoc or comment, before a line that starts with a name in column 0),
and each item is parsed and summarised once and remembered by its text. If the scanner is unsure, or an item
does not parse on its own, the whole file is parsed instead, so the result is always that of a whole-file
parse.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Final

from defectops.data import BLOCK_KINDS
from defectops.errors import TerraformParseError

#: Every other top-level block (``terraform``, ``moved``, ``import``, ``check``, ``removed``, ...).
OTHER_KIND = "other"

_TOP_LEVEL_KIND: Mapping[str, str] = MappingProxyType(
    {
        "resource": "resources",
        "data": "data_sources",
        "module": "modules",
        "variable": "variables",
        "output": "outputs",
        "locals": "locals",
        "provider": "providers",
    }
)


@dataclass(frozen=True, slots=True)
class TerraformBlock:
    """One addressable top-level item: its kind (one of :data:`BLOCK_KINDS` or ``other``) and content hash."""

    kind: str
    fingerprint: str


def _empty_blocks() -> Mapping[str, TerraformBlock]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TerraformMetrics:
    """Block-level metrics of one ``.tf`` file at one revision.

    ``attributes`` counts ``name = value`` pairs in every block at every depth (an object value is one
    attribute). ``max_depth`` is the deepest block nesting: a top-level block is depth 1, a block inside it
    depth 2 (``dynamic "x" { content { ... } }`` inside a resource reaches 3); a file without blocks is 0.
    """

    resources: int = 0
    data_sources: int = 0
    modules: int = 0
    variables: int = 0
    outputs: int = 0
    locals: int = 0
    providers: int = 0
    other_blocks: int = 0
    attributes: int = 0
    max_depth: int = 0
    blocks: Mapping[str, TerraformBlock] = field(default_factory=_empty_blocks)
    #: Read as HCL1 (Terraform before 0.12) by the pyhcl fallback (:mod:`defectops.mining.terraform_hcl1`).
    hcl1: bool = False

    def count(self, kind: str) -> int:
        """Number of items of one of :data:`BLOCK_KINDS` (or ``other``)."""
        if kind == OTHER_KIND:
            return self.other_blocks
        if kind not in BLOCK_KINDS:
            raise ValueError(f"unknown Terraform block kind {kind!r}")
        value: int = getattr(self, kind)
        return value

    @property
    def total_blocks(self) -> int:
        """All addressable items, including ``other`` blocks."""
        return len(self.blocks)


@dataclass(frozen=True, slots=True)
class TerraformDiff:
    """What changed between the parent and the new revision of one ``.tf`` file, keyed by block address.

    An address present only in the new revision is *added*, only in the parent *removed*, in both with a
    different content fingerprint *changed*. ``added``/``removed``/``changed`` map each of
    :data:`BLOCK_KINDS` to a count; the ``blocks_*`` totals also include ``other`` blocks.
    """

    added_addresses: tuple[str, ...]
    removed_addresses: tuple[str, ...]
    changed_addresses: tuple[str, ...]
    added: Mapping[str, int]
    removed: Mapping[str, int]
    changed: Mapping[str, int]
    attributes_delta: int
    max_depth_delta: int

    @property
    def blocks_added(self) -> int:
        return len(self.added_addresses)

    @property
    def blocks_removed(self) -> int:
        return len(self.removed_addresses)

    @property
    def blocks_changed(self) -> int:
        return len(self.changed_addresses)


EMPTY = TerraformMetrics()


def _is_meta(key: str) -> bool:
    return key.startswith("__") and key.endswith("__")


def _label(raw: str) -> str:
    """hcl2 v8 keeps the quotes of quoted labels (``'"logs"'``); bare identifiers come without."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1]
    return raw


def _unwrap_block(entry: object) -> tuple[list[str], dict[str, Any]] | None:
    """``{'"a"': {'"b"': {..., "__is_block__": True}}}`` -> (["a", "b"], body); None if not a block."""
    labels: list[str] = []
    node = entry
    while isinstance(node, dict):
        if node.get("__is_block__") is True:
            return labels, node
        if len(node) != 1:
            return None
        ((key, node),) = node.items()
        labels.append(_label(str(key)))
    return None


def _blocks_of(value: object) -> list[tuple[list[str], dict[str, Any]]] | None:
    """A body entry that is a non-empty list of blocks (nested blocks of one type), else None."""
    if not isinstance(value, list) or not value:
        return None
    found: list[tuple[list[str], dict[str, Any]]] = []
    for entry in value:
        block = _unwrap_block(entry)
        if block is None:
            return None
        found.append(block)
    return found


def _fingerprint(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def _walk_body(body: Mapping[str, Any], depth: int) -> tuple[int, int]:
    """(attributes, deepest block depth) of a block body found at ``depth``."""
    attributes = 0
    deepest = depth
    for key, value in body.items():
        if _is_meta(key):
            continue
        nested = _blocks_of(value)
        if nested is None:
            attributes += 1
            continue
        for _labels, child in nested:
            child_attributes, child_depth = _walk_body(child, depth + 1)
            attributes += child_attributes
            deepest = max(deepest, child_depth)
    return attributes, deepest


def _strip_meta(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "__is_block__"}


def _address(block_type: str, labels: list[str], body: Mapping[str, Any]) -> str:
    if block_type == "resource":
        return ".".join(labels)
    if block_type == "data":
        return ".".join(["data", *labels])
    if block_type == "variable":
        return ".".join(["var", *labels])
    if block_type == "provider":
        alias = body.get("alias")
        if isinstance(alias, str) and alias:
            return ".".join(["provider", *labels, _label(alias)])
        return ".".join(["provider", *labels])
    return ".".join([block_type, *labels])


@dataclass(frozen=True, slots=True)
class _Summary:
    """A parsed piece of a file: its addressable items in order, attributes, deepest block."""

    items: tuple[tuple[str, str, str], ...]  # (address before de-duplication, kind, fingerprint)
    attributes: int
    max_depth: int


def _loads(text: str) -> dict[str, Any]:
    import hcl2  # heavy (lark grammar): imported when a Terraform file is actually parsed

    options = hcl2.SerializationOptions(with_comments=False, with_meta=False, explicit_blocks=True)
    try:
        tree = hcl2.loads(text, serialization_options=options)
    except Exception as exc:  # lark errors, and python-hcl2 transformer errors on odd input
        first = str(exc).strip().splitlines()
        raise TerraformParseError(f"HCL parse error: {first[0] if first else type(exc).__name__}") from exc
    if not isinstance(tree, dict):
        raise TerraformParseError("HCL parse error: the document is not a body")
    return tree


def _loads_hcl1(text: str, hcl2_error: TerraformParseError) -> dict[str, Any]:
    """The fallback for pre-0.12 files: pyhcl's tree in python-hcl2's shape; both parsers' reasons if not."""
    from defectops.mining.terraform_hcl1 import parse_hcl1

    try:
        return parse_hcl1(text)
    except ValueError as exc:
        raise TerraformParseError(f"{hcl2_error}; not HCL1 either: {exc}") from exc


def _summarise(tree: Mapping[str, Any]) -> _Summary:
    items: list[tuple[str, str, str]] = []
    attributes = 0
    max_depth = 0
    for block_type, value in tree.items():
        if _is_meta(block_type):
            continue
        found = _blocks_of(value)
        if found is None:  # a top-level attribute (not valid in .tf, but HCL allows it)
            attributes += 1
            continue
        kind = _TOP_LEVEL_KIND.get(block_type, OTHER_KIND)
        for labels, body in found:
            body_attributes, depth = _walk_body(body, 1)
            attributes += body_attributes
            max_depth = max(max_depth, depth)
            if kind == "locals":
                items.extend(
                    (f"local.{name}", kind, _fingerprint(local_value))
                    for name, local_value in body.items()
                    if not _is_meta(name)
                )
            else:
                items.append((_address(block_type, labels, body), kind, _fingerprint(_strip_meta(body))))
    return _Summary(items=tuple(items), attributes=attributes, max_depth=max_depth)


@lru_cache(maxsize=32768)
def _summarise_item(text: str) -> _Summary:
    """One top-level piece, remembered by its text: unchanged blocks are parsed once per process."""
    return _summarise(_loads(text))


def clear_parse_cache() -> None:
    """Forget every remembered top-level item (memory, or a fair benchmark between repositories)."""
    _summarise_item.cache_clear()


# Characters that change the scanner's state; heredoc openers carry their end marker.
_SCAN: Final = re.compile(
    r'\\.|\$\$\{|%%\{|\$\{|%\{|/\*|//|<<-?([A-Za-z_][A-Za-z0-9_-]*)\r?\n|["{}\[\]()#\n]'
)
_ITEM_START: Final = re.compile(r"[A-Za-z_]")


def split_top_level(text: str) -> list[str] | None:
    """Cut HCL text into top-level items; None when the text does not scan cleanly (parse it whole).

    A cut is made after a newline outside any bracket, string, heredoc or comment, when the next line starts
    with a name in column 0 (``terraform fmt`` style). Continuation lines (indented, or starting with an
    operator) stay with their item. Joining the pieces gives back ``text`` exactly.
    """
    stack: list[str] = []  # "{", "[", "(", '"' (inside a string), "${" (template inside a string)
    cuts = [0]
    resume = 0
    for match in _SCAN.finditer(text):
        start = match.start()
        if start < resume:
            continue
        lexeme = match.group(0)
        if stack and stack[-1] == '"':
            if lexeme == '"':
                stack.pop()
            elif lexeme in ("$${", "%%{"):
                continue  # an escaped, literal "${"
            elif lexeme in ("${", "%{"):
                stack.append("${")
            elif lexeme == "\n" or lexeme.startswith("<<"):
                return None  # a quoted string cannot span lines
            continue
        if lexeme in ('"', "{", "[", "(", "${", "%{"):
            stack.append(lexeme)
        elif lexeme in ("}", "]", ")"):
            if not stack:
                return None
            stack.pop()
        elif lexeme in ("#", "//"):
            newline = text.find("\n", start)
            if newline < 0:
                break
            resume = newline  # the newline itself is scanned next
        elif lexeme == "/*":
            close = text.find("*/", start + 2)
            if close < 0:
                return None
            resume = close + 2
        elif lexeme.startswith("<<"):
            marker = re.compile(rf"^[ \t]*{re.escape(match.group(1))}[ \t]*\r?$", re.MULTILINE)
            end = marker.search(text, match.end())
            if end is None:
                return None
            resume = end.end()
        elif lexeme == "\n" and not stack and _ITEM_START.match(text, start + 1):
            cuts.append(start + 1)
    if stack:
        return None
    cuts.append(len(text))
    return [text[a:b] for a, b in pairwise(cuts) if b > a]


def parse_terraform(text: str, *, incremental: bool = True) -> TerraformMetrics:
    """Parse one ``.tf`` file and measure its blocks; raise :class:`TerraformParseError` if it is neither
    HCL2 nor, through the pyhcl fallback, HCL1 (Terraform before 0.12; the result says ``hcl1=True``).

    Addresses follow Terraform's own: ``aws_s3_bucket.logs``, ``data.aws_iam_policy_document.p``,
    ``module.vpc``, ``var.region``, ``output.id``, ``local.name``, ``provider.aws`` (``provider.aws.<alias>``
    with an ``alias``); other blocks ``<type>[.<label>...]``. A second block with the same address in one file
    gets ``#2``, ``#3``, ... in order of appearance (Terraform rejects most such files; ``moved`` and
    ``import`` blocks legitimately repeat). ``incremental=False`` parses the file in one piece (same result,
    no per-item cache; used to cross-check the incremental path).
    """
    pieces = split_top_level(text) if incremental else None
    summaries: list[_Summary] | None = None
    if pieces is not None and len(pieces) > 1:
        try:
            summaries = [_summarise_item(piece) for piece in pieces]
        except TerraformParseError:
            summaries = None  # maybe a cut the whole-file parse would not make: let it decide
    hcl1 = False
    if summaries is None:
        try:
            summaries = [_summarise(_loads(text))]
        except TerraformParseError as exc:
            summaries = [_summarise(_loads_hcl1(text, exc))]
            hcl1 = True

    counts = dict.fromkeys((*BLOCK_KINDS, OTHER_KIND), 0)
    blocks: dict[str, TerraformBlock] = {}
    for summary in summaries:
        for address, kind, fingerprint in summary.items:
            key = address
            n = 1
            while key in blocks:
                n += 1
                key = f"{address}#{n}"
            blocks[key] = TerraformBlock(kind=kind, fingerprint=fingerprint)
            counts[kind] += 1

    return TerraformMetrics(
        resources=counts["resources"],
        data_sources=counts["data_sources"],
        modules=counts["modules"],
        variables=counts["variables"],
        outputs=counts["outputs"],
        locals=counts["locals"],
        providers=counts["providers"],
        other_blocks=counts[OTHER_KIND],
        attributes=sum(s.attributes for s in summaries),
        max_depth=max((s.max_depth for s in summaries), default=0),
        blocks=MappingProxyType(blocks),
        hcl1=hcl1,
    )


def diff_terraform(parent: TerraformMetrics | None, new: TerraformMetrics | None) -> TerraformDiff:
    """Blocks added, removed and changed from ``parent`` to ``new``; ``None`` is an absent file."""
    old_side = parent if parent is not None else EMPTY
    new_side = new if new is not None else EMPTY
    old_blocks, new_blocks = old_side.blocks, new_side.blocks
    added = tuple(sorted(a for a in new_blocks if a not in old_blocks))
    removed = tuple(sorted(a for a in old_blocks if a not in new_blocks))
    changed = tuple(
        sorted(
            a
            for a, block in new_blocks.items()
            if a in old_blocks and old_blocks[a].fingerprint != block.fingerprint
        )
    )

    def per_kind(addresses: tuple[str, ...], source: Mapping[str, TerraformBlock]) -> Mapping[str, int]:
        tally = dict.fromkeys(BLOCK_KINDS, 0)
        for address in addresses:
            kind = source[address].kind
            if kind in tally:
                tally[kind] += 1
        return MappingProxyType(tally)

    return TerraformDiff(
        added_addresses=added,
        removed_addresses=removed,
        changed_addresses=changed,
        added=per_kind(added, new_blocks),
        removed=per_kind(removed, old_blocks),
        changed=per_kind(changed, new_blocks),
        attributes_delta=new_side.attributes - old_side.attributes,
        max_depth_delta=new_side.max_depth - old_side.max_depth,
    )
