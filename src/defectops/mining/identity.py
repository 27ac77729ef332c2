"""Which repository a miner state belongs to, judged from what every clone of it shares.

Why not the folder path: a second clone, a CI checkout or a moved folder is the same repository, and a state
file copied between them must be accepted; a state of another project must never be, because its history
metrics (developers, file ages, experience) would score this project's commits with someone else's past.

Evidence, strongest first:

1. **Root commits.** A complete clone knows its root commit(s); two histories that share a root share their
   beginning. A shallow clone cannot know its roots (its oldest commits look parentless), so this evidence is
   only used when both sides have it.
2. **A shared commit.** The state's head (or any commit the state recorded) present in the clone: a SHA is
   proof of the same history.
3. **The remote URL**, normalised (scheme, credentials, ``.git`` suffix, case of the host and path dropped),
   so ``git@github.com:Org/Repo.git`` and ``https://token@github.com/org/repo`` are the same repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from defectops.errors import ForeignStateError
from defectops.git import GitRepo

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")


def normalise_remote(url: str) -> str:
    """``host/owner/name`` for a network remote, the absolute path for a local one, "" for none."""
    url = url.strip()
    if not url:
        return ""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return parts.path.rstrip("/").removesuffix(".git")
        host = (parts.hostname or "").lower()
        path = parts.path
    elif (match := _SCP_LIKE.match(url)) and not url.startswith(("/", ".")):
        host, path = match.group("host").lower(), match.group("path")
    else:
        return url.rstrip("/").removesuffix(".git")
    path = path.strip("/").removesuffix(".git").lower()
    return f"{host}/{path}" if host else path


@dataclass(frozen=True, slots=True)
class RepositoryIdentity:
    """What identifies a repository across clones: its root commits (empty when unknown) and its remote."""

    roots: tuple[str, ...]
    remote: str

    @classmethod
    def of(cls, repo: GitRepo, rev: str = "HEAD") -> RepositoryIdentity:
        roots: tuple[str, ...] = ()
        if not repo.is_shallow():
            listed = repo.run("rev-list", "--max-parents=0", rev, check=False).decode().split()
            roots = tuple(sorted(listed))
        return cls(roots=roots, remote=remote_of(repo))

    def encode_roots(self) -> str:
        return ",".join(self.roots)

    @staticmethod
    def decode_roots(text: str) -> tuple[str, ...]:
        return tuple(sorted(r for r in text.split(",") if r))


def remote_of(repo: GitRepo) -> str:
    """The normalised URL of the repository's remote ("" when it has none)."""
    return normalise_remote(_remote_url(repo))


def _remote_url(repo: GitRepo) -> str:
    """The URL of ``origin``, else of the first remote, else ""."""
    listed = repo.run("remote", check=False).decode().split()
    if not listed:
        return ""
    name = "origin" if "origin" in listed else listed[0]
    return repo.run("config", "--get", f"remote.{name}.url", check=False).decode().strip()


def check_same_repository(
    state: RepositoryIdentity,
    state_head: str,
    repo: GitRepo,
    *,
    state_source: str = "",
    what: str = "the miner state",
) -> None:
    """Refuse (ForeignStateError) unless the evidence says ``state`` was mined from ``repo``'s history.

    Accepts when the state's head is in the clone, when both know their roots and share one, or (only when
    neither of those can be judged) when both know their remote and it is the same, or when the clone was
    cloned from the very folder the state was mined in (``state_source``).
    """
    clone = RepositoryIdentity.of(repo)
    if state.roots and clone.roots:
        if set(state.roots) & set(clone.roots):
            return
        raise ForeignStateError(
            f"{what} belongs to another repository: its root commit {state.roots[0][:12]} is not a root of "
            f"{repo.path} ({clone.roots[0][:12]})"
        )
    if state_head and repo.object_exists(state_head):
        return
    if clone.remote and state_source and clone.remote == normalise_remote(state_source):
        return
    if state.remote and clone.remote:
        if state.remote == clone.remote:
            return
        raise ForeignStateError(
            f"{what} belongs to another repository: it was mined from {state.remote}, this is {clone.remote}"
        )
    raise ForeignStateError(
        f"cannot tell whether {what} belongs to {repo.path}: this shallow clone has neither its head "
        f"{state_head[:12] or '(unknown)'} nor a remote URL to compare; fetch more history or add the remote"
    )
