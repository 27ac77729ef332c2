"""The control file: how admin changes made through one worker reach every worker of the service.

With ``--workers N`` each request lands on one process; a reload, promotion, rollback or traffic change made
there would otherwise stay there. The worker that makes a change writes the resulting deployment (versions
and traffic split, with a generation number) to ``<workspace>/serving/<model>.control.json``; every worker
checks the file every ``poll_seconds`` and, when the generation moved, loads those exact versions
(smoke-tested, in the background) and swaps them in. The traffic split also survives a restart this way.

Writes hold an exclusive ``flock`` on a lock file beside it and replace the file atomically
(``os.replace``), so a reader sees the old or the new document, never half of one, and two writers never
reuse a generation.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from defectops.errors import ConfigError, InputError
from defectops.serving.deployment import Traffic

_FORMAT = 1


@dataclass(frozen=True)
class ControlState:
    """The deployment every worker should converge to."""

    generation: int
    champion: int | None
    challenger: int | None
    traffic: Traffic
    updated_at: str
    reason: str
    #: The artifact digests of the champion and the challenger as loaded by the writer (None: not known).
    #: Workers that already serve a version re-read it when its digest differs (a reload after the artifact
    #: was replaced keeps the version number).
    champion_digest: str | None = None
    challenger_digest: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "generation": self.generation,
            "champion": self.champion,
            "challenger": self.challenger,
            "champion_digest": self.champion_digest,
            "challenger_digest": self.challenger_digest,
            "traffic": {"mode": self.traffic.mode, "share": self.traffic.share},
            "updated_at": self.updated_at,
            "reason": self.reason,
        }

    @classmethod
    def from_document(cls, document: Any) -> ControlState:
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise ConfigError("the serving control file has an unknown format")
        traffic = document.get("traffic") or {}
        try:
            return cls(
                generation=int(document["generation"]),
                champion=_version(document.get("champion")),
                challenger=_version(document.get("challenger")),
                traffic=Traffic(mode=traffic.get("mode", "off"), share=float(traffic.get("share", 0.0))),
                updated_at=str(document.get("updated_at", "")),
                reason=str(document.get("reason", "")),
                champion_digest=_digest(document.get("champion_digest")),
                challenger_digest=_digest(document.get("challenger_digest")),
            )
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise ConfigError(f"the serving control file is invalid: {exc}") from None


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"not a model version: {value!r}")
    return value


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"not an artifact digest: {value!r}")
    return value


class ControlFile:
    """One model's control document in the workspace (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def for_model(cls, workspace_root: str | os.PathLike[str], model_name: str) -> ControlFile:
        """The control file of ``model_name``: ``<workspace>/serving/<model>.control.json``."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
        return cls(Path(workspace_root) / "serving" / f"{safe}.control.json")

    def stamp(self) -> tuple[int, int] | None:
        """A cheap change marker (mtime, size), None when there is no file yet."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def read(self) -> ControlState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.path} is not JSON: {exc}") from None
        return ControlState.from_document(document)

    def update(
        self,
        change: Callable[[ControlState | None], tuple[int | None, int | None, Traffic, str]],
        *,
        now: datetime,
        digests: tuple[str | None, str | None] = (None, None),
    ) -> ControlState:
        """Apply ``change`` (current state -> champion, challenger, traffic, reason) as the next one;
        ``digests``: the artifact digests of that champion and challenger."""
        with self._locked():
            current = self.read()
            champion, challenger, traffic, reason = change(current)
            state = ControlState(
                generation=(current.generation if current else 0) + 1,
                champion=champion,
                challenger=challenger,
                traffic=traffic,
                updated_at=now.isoformat(),
                reason=reason,
                champion_digest=digests[0] if champion is not None else None,
                challenger_digest=digests[1] if challenger is not None else None,
            )
            self._write(state)
            return state

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _write(self, state: ControlState) -> None:
        text = json.dumps(state.to_document(), indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
