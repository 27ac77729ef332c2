"""Workspace locks and unique temporary files: how two processes share one workspace without corrupting it.

Two ``mine``/``run``/``heal`` processes on one workspace used to write the same ``<file>.tmp`` and race
MLflow's schema creation; half of them failed and one reported success for a state it never wrote. Every
read-modify-write of a workspace file now happens under an exclusive ``flock`` on a lock file beside it,
and every write goes to a temporary file of its own that is renamed over the target (a reader sees the old
file or the new one, never half of one).

A process that finds the lock held says so once on stderr and waits; after ``wait_seconds`` it gives up with
a one-line :class:`~defectops.errors.WorkspaceBusyError` (exit 75, "try again"). ``flock`` locks are released
by the kernel when their holder dies, so a killed process never leaves a stale lock behind.

POSIX only (``fcntl``), imported lazily so that importing this module works everywhere.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from defectops.errors import WorkspaceBusyError

#: How long a second process waits for a workspace lock before giving up (a full mine of a large
#: repository takes minutes; waiting longer than this means something is stuck).
DEFAULT_WAIT_SECONDS = 1800.0
_POLL_SECONDS = 0.1


def _say_on_stderr(message: str) -> None:
    from defectops.console import stderr

    stderr.print(f"[yellow]waiting:[/] {message}", highlight=False)


@contextmanager
def exclusive(
    path: Path,
    *,
    what: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    say: Callable[[str], None] | None = _say_on_stderr,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block; ``what`` names the work it
    guards in the messages ("mining repo-x"). Waits up to ``wait_seconds`` (0: do not wait) for another
    holder, telling ``say`` once, then raises :class:`WorkspaceBusyError`.

    Not reentrant: a process that takes the same lock file twice waits for itself; nest different files.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(
                        f"{what}: another process{holder} holds {path}; nothing was done, try again later"
                    ) from None
                if not told and say is not None:
                    say(f"{what}: another process{holder} holds {path}; waiting up to {wait_seconds:.0f} s")
                    told = True
                time.sleep(_POLL_SECONDS)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    """`` (pid N)`` from the lock file, for the message (best effort: the holder may be writing it)."""
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def temporary_sibling(path: Path) -> Path:
    """A fresh name beside ``path`` for writing it atomically: unique per call, so concurrent writers (other
    processes, or threads of this one) never write into one temporary file; rename it over ``path`` when
    complete."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` with a :func:`temporary_sibling` of ``path``, then rename it over ``path``; the
    temporary file is removed when ``write`` fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
