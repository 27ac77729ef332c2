"""Build small, real git repositories for tests, with full control over authors, dates and content.

Every test repository is made by git itself in a temporary folder; nothing is mocked. Dates are explicit so
that time-based metrics (age, recent experience) have hand-computable expected values.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Author:
    name: str
    email: str


ALICE = Author("Alice", "alice@example.com")
BOB = Author("Bob", "bob@example.com")
CAROL = Author("Carol", "carol@example.com")


@dataclass
class RepoBuilder:
    """A git repository under construction. ``commit`` writes files and returns the new sha."""

    path: Path
    clock: datetime = EPOCH
    shas: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, path: Path, branch: str = "main") -> RepoBuilder:
        path.mkdir(parents=True, exist_ok=True)
        builder = cls(path)
        builder.git("init", "-q", "-b", branch)
        builder.git("config", "user.name", "Test Runner")
        builder.git("config", "user.email", "runner@example.com")
        builder.git("config", "commit.gpgsign", "false")
        builder.git("config", "core.autocrlf", "false")
        return builder

    def git(self, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> str:
        full_env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.path),
            "LC_ALL": "C",
            **(env or {}),
        }
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=full_env, capture_output=True, input=input, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode("utf-8", errors="replace")

    def write(self, rel: str | bytes, content: str | bytes | None) -> None:
        """Write (or with ``None`` delete) one file in the work tree and stage it."""
        rel_path = os.fsdecode(rel) if isinstance(rel, bytes) else rel
        target = self.path / rel_path
        if content is None:
            self.git("rm", "-q", "--", rel_path)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        self.git("add", "--", rel_path)

    def commit(
        self,
        message: str,
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        author: Author = ALICE,
        when: datetime | None = None,
        days: float | None = None,
        committer_when: datetime | None = None,
        allow_empty: bool = False,
    ) -> str:
        """Commit ``files`` (path -> content, None deletes). ``days`` advances the clock before committing."""
        if days is not None:
            self.clock = self.clock + timedelta(days=days)
        stamp = when or self.clock
        self.clock = max(self.clock, stamp)
        for rel, content in (files or {}).items():
            self.write(rel, content)
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": stamp.isoformat(),
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
            "GIT_COMMITTER_DATE": (committer_when or stamp).isoformat(),
        }
        args = ["commit", "-q", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args, env=env)
        sha = self.head()
        self.shas.append(sha)
        return sha

    def move(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()


def lines(n: int, prefix: str = "line") -> str:
    """``n`` distinct text lines, newline-terminated."""
    return "".join(f"{prefix} {i}\n" for i in range(n))
