"""HCL1 (Terraform before 0.12) read with pyhcl, in python-hcl2's shape, so one summariser serves both.

Why a fallback: python-hcl2 reads only HCL2; a Terraform history from before mid-2019 is HCL1
(``"${var.x}"`` everywhere, ``tags { ... }`` maps, list-of-map blocks), and a large share of its commits would
otherwise be unmeasured. pyhcl (a ply parser) reads HCL1 but returns nested dicts:
``{"resource": {"aws_s3_bucket": {"logs": {...}}}}``. This module rewrites that into python-hcl2's v8 shape
(``{"resource": [{'"aws_s3_bucket"': {'"logs"': {..., "__is_block__": True}}}]}``), with the label count
of each block type as Terraform 0.11 had it.

What HCL1 cannot tell: ``x { ... }`` and ``x = { ... }`` parse to the same dict, so every nested object
counts as a nested block (for depth and attributes); pyhcl merges two blocks with the same address (two
``provider "aws"`` blocks become one). The counts of a file read as HCL1 are therefore close to, not exactly,
what Terraform 0.11 saw; the file is flagged (:attr:`TerraformMetrics.hcl1`) and counted in the summary.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

#: How many labels each top-level block type has in Terraform 0.11; other types have none.
_LABELS: Final[dict[str, int]] = {
    "resource": 2,
    "data": 2,
    "module": 1,
    "variable": 1,
    "output": 1,
    "provider": 1,
}


@lru_cache(maxsize=1)
def _parser() -> Any:
    """One pyhcl parser per process: ``hcl.loads`` builds ply's tables on every call (~0.3 s), this once."""
    from hcl.parser import HclParser

    return HclParser()


def parse_hcl1(text: str) -> dict[str, Any]:
    """``text`` read as HCL1, in python-hcl2's shape; ValueError (with pyhcl's message) if it is not."""
    try:
        tree = _parser().parse(text)
    except Exception as exc:  # ply raises ValueError and friends, with the offending token
        first = str(exc).strip().splitlines()
        raise ValueError(first[0] if first else type(exc).__name__) from exc
    if not isinstance(tree, dict):
        raise ValueError("the document is not a body")
    out: dict[str, Any] = {}
    for block_type, value in tree.items():
        out[block_type] = _top_level(block_type, value)
    return out


def _top_level(block_type: str, value: object) -> object:
    labels = _LABELS.get(block_type, 0)
    if not isinstance(value, dict | list):
        return value  # a top-level attribute
    blocks: list[dict[str, Any]] = []
    for labelled, body in _expand(value, labels):
        node: dict[str, Any] = _body(body)
        for label in reversed(labelled):
            node = {f'"{label}"': node}
        blocks.append(node)
    return blocks


def _expand(value: object, labels: int) -> list[tuple[list[str], dict[str, Any]]]:
    """Walk ``labels`` levels of nested dicts (a list at any level is repeated blocks) down to bodies."""
    if isinstance(value, list):
        return [found for item in value for found in _expand(item, labels)]
    if not isinstance(value, dict):
        return []
    if labels == 0:
        return [([], value)]
    found: list[tuple[list[str], dict[str, Any]]] = []
    for key, inner in value.items():
        for rest, body in _expand(inner, labels - 1):
            found.append(([str(key), *rest], body))
    return found


def _body(body: dict[str, Any]) -> dict[str, Any]:
    """A block body: nested objects (and lists of objects) become nested blocks, the rest attributes."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            out[key] = [_body(value)]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out[key] = [_body(v) for v in value]
        else:
            out[key] = value
    out["__is_block__"] = True
    return out
