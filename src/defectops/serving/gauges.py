"""Gauges published for the service's ``/metrics`` by the processes that watch it.

``defectops heal`` (each cycle) writes the Prometheus text of its latest monitoring result beside the served
model's control file (``<workspace>/serving/<model>.monitoring.prom``); every service worker appends that
text to its exposition when Prometheus scrapes, re-reading the file only when it changed. The file holds
finished Prometheus text, so the service needs nothing from monitoring to expose it: monitoring formats,
serving only publishes and reads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def published_gauges_path(control_path: str | os.PathLike[str]) -> Path:
    """Where the gauges of the model whose control file is ``control_path`` are published."""
    control = Path(control_path)
    return control.with_name(control.name.removesuffix(".control.json") + ".monitoring.prom")


def publish_gauges(exposition: str, path: str | os.PathLike[str]) -> None:
    """Write ``exposition`` atomically (readers see the old or the new text, never half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(exposition)
    os.replace(tmp, path)


class PublishedGauges:
    """The published Prometheus text, cached by the file's modification time and size."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._text = ""

    def exposition(self) -> str:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return ""
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return self._text  # a file being replaced or damaged: keep serving the last good gauges
            self._text = text if not text or text.endswith("\n") else text + "\n"
            self._stamp = stamp
        return self._text
