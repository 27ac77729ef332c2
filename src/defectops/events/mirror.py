"""The bare mirrors a worker keeps of the repositories it scores, and the lock that serialises them.

``<workspace>/events/mirrors/<owner>+<name>.git`` is ``git clone --mirror`` of the configured source, brought
up to date with ``git fetch --prune`` (the mirror's refspec ``+refs/*:refs/*`` takes a force-push as it is:
the branch is moved to the rewritten history, and the miner notices its state's head is no longer in it).

Workers that share a workspace take an exclusive file lock per repository around fetch, scoring, logging and
reporting: git and the miner state are not written by two processes at once, and a commit that arrives in a
push and a pull-request event at the same moment is reported once, by whichever worker comes second finding
the first one's check run.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator
from pathlib import Path

from defectops.config import child_environment
from defectops.errors import GitError
from defectops.git import GitRepo


def mirror_path(root: Path, repo: str) -> Path:
    return root / "events" / "mirrors" / f"{repo.replace('/', '+')}.git"


@contextlib.contextmanager
def repository_lock(root: Path, repo: str) -> Iterator[None]:
    """Exclusive, per repository, across the processes sharing ``root`` (released if the process dies)."""
    path = root / "events" / "locks" / f"{repo.replace('/', '+')}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        env=child_environment({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}),
        check=False,
    )
    if proc.returncode != 0:
        first = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {first[-1] if first else proc.returncode}")


def update_mirror(root: Path, repo: str, source: str, wanted: tuple[str, ...] = ()) -> GitRepo:
    """The up-to-date bare mirror of ``repo``; GitError when a ``wanted`` commit is still not in it."""
    path = mirror_path(root, repo)
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".tmp")
        if staging.exists():
            import shutil

            shutil.rmtree(staging)
        _git("clone", "--quiet", "--mirror", source, str(staging))
        staging.rename(path)
    else:
        _git("fetch", "--quiet", "--prune", "--force", "origin", cwd=path)
    mirror = GitRepo.open(path)
    missing = [sha for sha in wanted if not mirror.object_exists(sha)]
    if missing:
        raise GitError(f"{repo}: commit {missing[0][:12]} is not in the mirror after fetching {source}")
    return mirror


def default_branch(mirror: GitRepo) -> str:
    """The mirror's ``HEAD`` branch, e.g. ``refs/heads/main``."""
    return mirror.run("symbolic-ref", "HEAD").decode().strip()
