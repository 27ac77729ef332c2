"""The commits of a range, oldest first, with parents, times and messages, from one ``git log`` stream.

The labelling pass needs the whole commit list before it streams patches: fix detection runs on messages,
explicit links are resolved against all known shas, and each state is kept only while children still need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from defectops.git import GitRepo, decode_text


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit: sha, parents, author and committer time (UTC epoch seconds), full message."""

    sha: str
    parents: tuple[str, ...]
    author_time: int
    committer_time: int
    message: str

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


def read_history(repo: GitRepo, revisions: Sequence[str]) -> list[CommitInfo]:
    """Commits of ``git log <revisions>`` in ``--topo-order --reverse`` (every parent before its children)."""
    args = [
        "log",
        "--topo-order",
        "--reverse",
        "-z",
        "--no-color",
        "--encoding=UTF-8",
        "--format=%H %P%n%at %ct%n%B",
        *revisions,
        "--",
    ]
    data = b"".join(repo.stream(*args))
    commits: list[CommitInfo] = []
    for record in data.split(b"\0"):
        if not record.strip():
            continue
        head, _, rest = record.lstrip(b"\n").partition(b"\n")
        times, _, message = rest.partition(b"\n")
        ids = head.decode("ascii").split()
        author, committer = times.split()
        commits.append(
            CommitInfo(
                sha=ids[0],
                parents=tuple(ids[1:]),
                author_time=int(author),
                committer_time=int(committer),
                message=decode_text(message).rstrip("\n"),
            )
        )
    return commits
