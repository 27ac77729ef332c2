"""A thin, typed wrapper around the git command line.

Why the command line and not a library: git itself is the fastest and most correct reader of git
repositories (mailmap, rename detection, packfiles). defectops never starts a process per commit on the hot
path; it streams one ``git log`` and parses it as it arrives.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from defectops.config import child_environment
from defectops.errors import (
    EmptyRepositoryError,
    GitError,
    MissingObjectError,
    NotARepositoryError,
)

_GIT_ENV = {
    "LC_ALL": "C",
    "LANG": "C",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",
}

# Options every history read uses: no pager, raw paths (we parse -z output as bytes), UTF-8 messages.
BASE_OPTIONS: tuple[str, ...] = ("-c", "core.quotepath=off", "-c", "log.showSignature=false")


def decode_path(raw: bytes) -> str:
    """Paths are bytes in git; non-UTF-8 bytes are kept visible as ``\\xNN`` escapes, never dropped."""
    return raw.decode("utf-8", errors="backslashreplace")


def decode_text(raw: bytes) -> str:
    """Messages and names: decoded as UTF-8, invalid bytes replaced (git was asked for UTF-8 already)."""
    return raw.decode("utf-8", errors="replace")


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "git failed without a message"
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines)[0]


@dataclass(frozen=True)
class GitRepo:
    """A repository on disk, validated once; every git call goes through :meth:`run` or :meth:`stream`."""

    path: Path
    git_dir: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> GitRepo:
        """Open a work tree or bare repository; raise a one-line error if it is not one."""
        where = Path(path).expanduser()
        if not where.exists():
            raise NotARepositoryError(f"{where}: no such directory")
        if not where.is_dir():
            raise NotARepositoryError(f"{where}: not a directory")
        proc = subprocess.run(
            ["git", *BASE_OPTIONS, "rev-parse", "--absolute-git-dir", "--is-bare-repository"],
            cwd=where,
            capture_output=True,
            env=child_environment(_GIT_ENV),
            check=False,
        )
        if proc.returncode != 0:
            raise NotARepositoryError(f"{where}: not a git repository")
        lines = proc.stdout.decode("utf-8", errors="surrogateescape").splitlines()
        git_dir = Path(lines[0])
        top = git_dir
        if len(lines) > 1 and lines[1].strip() == "false":
            shown = subprocess.run(
                ["git", *BASE_OPTIONS, "rev-parse", "--show-toplevel"],
                cwd=where,
                capture_output=True,
                env=child_environment(_GIT_ENV),
                check=False,
            )
            if shown.returncode == 0 and shown.stdout.strip():
                top = Path(shown.stdout.decode("utf-8", errors="surrogateescape").strip())
        return cls(path=top.resolve(), git_dir=git_dir.resolve())

    # -- process helpers ------------------------------------------------------------------------------

    def _cmd(self, args: Sequence[str]) -> list[str]:
        return ["git", *BASE_OPTIONS, "-C", str(self.path), *args]

    def run(self, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
        """Run git and return stdout; a failure becomes a :class:`GitError` with git's own first line."""
        proc = subprocess.run(
            self._cmd(args),
            input=stdin,
            capture_output=True,
            env=child_environment(_GIT_ENV),
            check=False,
        )
        if check and proc.returncode != 0:
            raise _classify(_first_line(proc.stderr))
        return proc.stdout

    def stream(self, *args: str, stdin: bytes | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield stdout of a long-running git command in chunks; raise on a non-zero exit at the end."""
        # stderr goes to a file: a pipe nobody reads would block git once it fills up.
        errfile = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen(
            self._cmd(args),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errfile,
            env=child_environment(_GIT_ENV),
        )
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - Popen contract with PIPE
            raise GitError("git: could not open pipes")
        if stdin is not None and proc.stdin is not None:
            import threading

            pipe = proc.stdin

            def feed() -> None:
                try:
                    pipe.write(stdin)
                    pipe.close()
                except BrokenPipeError:
                    pass

            threading.Thread(target=feed, daemon=True).start()
        finished = False
        try:
            while True:
                chunk = os.read(stdout.fileno(), chunk_size)
                if not chunk:
                    finished = True
                    break
                yield chunk
        finally:
            if not finished:
                proc.kill()  # the consumer stopped early: never leave git running
            stdout.close()
            code = proc.wait()
            errfile.seek(0)
            err = errfile.read()
            errfile.close()
        if finished and code != 0:
            raise _classify(_first_line(err))

    # -- repository facts -----------------------------------------------------------------------------

    def is_shallow(self) -> bool:
        return self.run("rev-parse", "--is-shallow-repository").strip() == b"true"

    def resolve(self, rev: str) -> str:
        """Full sha of a revision; a clear error if it does not exist."""
        if rev.startswith("-"):
            raise GitError(f"invalid revision {rev!r}")
        out = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        sha = out.decode().strip()
        if not sha:
            if rev in ("HEAD",) and not self.has_commits():
                raise EmptyRepositoryError(f"{self.path}: the repository has no commits")
            raise GitError(f"{self.path}: unknown revision {rev!r}")
        return sha

    def has_commits(self) -> bool:
        proc = subprocess.run(
            self._cmd(["rev-parse", "--verify", "--quiet", "HEAD"]),
            capture_output=True,
            env=child_environment(_GIT_ENV),
            check=False,
        )
        return proc.returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = subprocess.run(
            self._cmd(["merge-base", "--is-ancestor", ancestor, descendant]),
            capture_output=True,
            env=child_environment(_GIT_ENV),
            check=False,
        )
        return proc.returncode == 0

    def object_exists(self, sha: str) -> bool:
        proc = subprocess.run(
            self._cmd(["cat-file", "-e", sha]),
            capture_output=True,
            env=child_environment(_GIT_ENV),
            check=False,
        )
        return proc.returncode == 0

    def repo_id(self) -> str:
        """A stable, filesystem-safe name for this repository's state and datasets in the workspace."""
        digest = hashlib.sha256(str(self.path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.path.name) or "repo"
        return f"{name}-{digest}"


def _classify(message: str) -> GitError:
    lowered = message.lower()
    if "unable to read" in lowered or "bad object" in lowered or "missing blob" in lowered:
        return MissingObjectError(f"git: {message} (the repository is missing objects; try `git fsck`)")
    if "not a git repository" in lowered:
        return NotARepositoryError(message)
    if "does not have any commits" in lowered or "bad default revision" in lowered:
        return EmptyRepositoryError(message)
    return GitError(f"git: {message}")
