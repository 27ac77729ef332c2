"""The latest monitoring result of a served model, published for the service's ``/metrics``.

``defectops heal`` (each cycle) and ``defectops monitor --model-name`` write the result beside the service's
control file (``<workspace>/serving/<model>.monitoring.json``); every service worker reads it when Prometheus
scrapes and appends its gauges (drift scores, PSI, realized and estimated performance, ...) to the
exposition, re-reading the file only when it changed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from defectops.errors import DefectOpsError
from defectops.monitoring.report import (
    MonitoringResult,
    format_prometheus,
    from_json,
    prometheus_gauges,
    to_json,
)


def latest_path(control_path: Path) -> Path:
    """Where the result of the model whose control file is ``control_path`` is published."""
    return control_path.with_name(control_path.name.removesuffix(".control.json") + ".monitoring.json")


def publish(result: MonitoringResult, path: Path) -> None:
    """Write ``result`` atomically (readers see the old or the new document, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(to_json(result))
    os.replace(tmp, path)


class PublishedGauges:
    """Prometheus text of the published result, cached by the file's modification time and size."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
                result = from_json(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError, DefectOpsError):
                return self._text  # a file being replaced or damaged: keep serving the last good gauges
            self._text = format_prometheus(prometheus_gauges(result))
            self._stamp = stamp
        return self._text
