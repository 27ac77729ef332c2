"""Fingerprints of stored datasets: what the data is (content hash), what made it, and from which revision.

A fingerprint is written beside every Parquet file as ``<file>.fingerprint.json`` so that a model can name the
exact data it was trained on, and a rerun can tell whether anything changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from defectops import __version__
from defectops.locks import replace_atomically


@dataclass(frozen=True)
class Fingerprint:
    """Identity of one stored dataset."""

    content_sha256: str
    rows: int
    defectops_version: str
    source: str
    source_head: str
    created_at: str

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


def file_sha256(path: Path, *, decompressed: bool = False) -> str:
    """The SHA-256 of ``path``'s bytes; with ``decompressed``, of a ``.gz`` file's content once decompressed
    (so a gzip-compressed copy of a published file has the published file's hash)."""
    digest = hashlib.sha256()
    opener = gzip.open if decompressed and path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + ".fingerprint.json")


def write_fingerprint(
    data_path: Path, *, rows: int, source: str, source_head: str, now: datetime
) -> Fingerprint:
    """Hash ``data_path`` and write its fingerprint beside it."""
    fingerprint = Fingerprint(
        content_sha256=file_sha256(data_path),
        rows=rows,
        defectops_version=__version__,
        source=source,
        source_head=source_head,
        created_at=now.isoformat(),
    )
    text = json.dumps(fingerprint.as_dict(), indent=2) + "\n"
    replace_atomically(fingerprint_path(data_path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return fingerprint


def read_fingerprint(data_path: Path) -> Fingerprint | None:
    path = fingerprint_path(data_path)
    if not path.exists():
        return None
    return Fingerprint(**json.loads(path.read_text()))
