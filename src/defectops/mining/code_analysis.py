"""Measuring one file version: its language, lizard's metrics of source code (checked with ``ast`` for
Python), or the Terraform reader's metrics of a ``.tf`` file."""

from __future__ import annotations

import ast
import contextlib
import importlib
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import IO, Final

from defectops.errors import TerraformParseError
from defectops.mining.code_rows import SKIP_BINARY, TERRAFORM, SourceMetrics
from defectops.mining.terraform import TerraformMetrics, parse_terraform


def _lizard() -> ModuleType:
    """lizard, imported without its side effect on ``sys.path``.

    On import, lizard puts the folder of ``sys.argv[0]`` at the front of ``sys.path``; under ``python -m
    defectops`` that is ``defectops/``'s own folder, so every later top-level import of a name that is also a
    defectops subpackage (``git``, ``data``, ``config``, ``storage``, ...) got the subpackage: MLflow's
    ``from git import Repo`` failed with a warning on every registration. The path is put back as it was."""
    saved = list(sys.path)
    try:
        return importlib.import_module("lizard")
    finally:
        sys.path[:] = saved


# git's own binary heuristic: a NUL byte in the first 8000 bytes.
_BINARY_PROBE: Final = 8000


@lru_cache(maxsize=16384)
def language_of(path: str) -> str | None:
    """``terraform`` for ``.tf``, lizard's language name for what lizard reads, None for anything else.

    lizard itself falls back to its C reader for unknown files; we do not, so a README is never "C".
    """
    if path.lower().endswith(".tf"):
        return TERRAFORM
    lizard = _lizard()
    reader = lizard.get_reader_for(path)
    if reader is None:
        return None
    names = getattr(reader, "language_names", None) or [reader.__name__]
    return str(names[0])


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one blob measured as: metrics, or why not (cached by blob id and language)."""

    source: SourceMetrics | None = None
    terraform: TerraformMetrics | None = None
    skipped: str | None = None
    parse_error: bool = False
    error: str | None = None


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


class _LizardComplaints:
    """Stands in for ``sys.stderr`` during one lizard call: keeps lizard's ``[skip] ...`` complaint (the only
    sign of a RecursionError it swallows) and passes every other write through, so a progress bar drawing on
    stderr from another thread is neither lost nor mistaken for a complaint."""

    def __init__(self, target: IO[str]) -> None:
        self._target = target
        self.complaints: list[str] = []

    def write(self, text: str) -> int:
        if text.startswith("[skip] fail to process"):
            self.complaints.append(text.strip())
            return len(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._target, name)


def analyze_source(path: str, text: str) -> tuple[SourceMetrics | None, str | None]:
    """lizard's metrics of ``text`` read as the language of ``path``, and a parse-error message (or None).

    lizard does not reject broken code; its failures (an exception, or a RecursionError it reports on stderr
    and then returns partial results for) are parse errors with no metrics. Python is also checked with
    ``ast`` so that syntax errors are flagged, keeping lizard's values.
    """
    lizard = _lizard()
    watcher = _LizardComplaints(sys.stderr)
    try:
        with contextlib.redirect_stderr(watcher):
            info = lizard.analyze_file.analyze_source_code(path, text)
    except Exception as exc:  # lizard's readers are heuristic state machines; any failure is a parse error
        return None, f"lizard failed: {type(exc).__name__}: {exc}".splitlines()[0]
    if watcher.complaints:
        return None, f"lizard: {watcher.complaints[0].splitlines()[0]}"
    functions = info.function_list
    ccns = [int(f.cyclomatic_complexity) for f in functions]
    metrics = SourceMetrics(
        nloc=int(info.nloc),
        ccn=sum(ccns),
        ccn_max=max(ccns, default=0),
        tokens=int(info.token_count),
        functions=len(functions),
    )
    error = _python_syntax_error(path, text) if language_of(path) == "python" else None
    return metrics, error


def _python_syntax_error(path: str, text: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of old code (invalid escapes) are not errors
            ast.parse(text, filename=path)
    except SyntaxError as exc:
        return f"Python syntax error: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return f"Python syntax error: {type(exc).__name__}"
    return None


def analyze_blob(language: str, path: str, data: bytes) -> Analysis:
    """Measure one blob read as ``language`` (``path`` tells lizard its dialect)."""
    if b"\0" in data[:_BINARY_PROBE]:
        return Analysis(skipped=SKIP_BINARY)
    text = _decode(data)
    if language == TERRAFORM:
        try:
            return Analysis(terraform=parse_terraform(text))
        except TerraformParseError as exc:
            return Analysis(parse_error=True, error=str(exc))
    source, error = analyze_source(path, text)
    return Analysis(source=source, parse_error=error is not None, error=error)
