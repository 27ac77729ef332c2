"""What a scored commit changed: its files with line counts, and the first changed line of the main ones.

SARIF results and GitHub annotations must point at a file and a line. A commit is not a line of code, so
defectops points at the files of the commit that changed most (by churn, lines added plus deleted), at the
first line the commit added there: where a reviewer should start reading. Files come from the same
``git log --raw --numstat`` parser the miner uses; first lines from one ``git show -U0`` per commit, limited
to those files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from defectops.git import ChangeType, Commit, GitRepo, decode_path, header_name, parse_hunk_header
from defectops.mining import read_commits

#: How many files of a commit are shown as its locations (GitHub displays the first one).
MAX_LOCATIONS = 3


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One file a commit touched; ``first_line`` is the first line it added (1 when unknown or none)."""

    path: str
    old_path: str | None
    change_type: str
    added: int
    deleted: int
    binary: bool
    first_line: int = 1

    @property
    def churn(self) -> int:
        return self.added + self.deleted

    @property
    def exists_after(self) -> bool:
        """Whether the file is in the commit's tree (a deleted file cannot carry an annotation)."""
        return self.change_type != ChangeType.DELETED.value

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "old_path": self.old_path,
            "change_type": self.change_type,
            "added": self.added,
            "deleted": self.deleted,
            "binary": self.binary,
            "first_line": self.first_line,
        }


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """Who made a commit, its subject and its files (largest churn first)."""

    sha: str
    subject: str
    author_name: str
    author_email: str
    files: tuple[ChangedFile, ...]

    def hotspots(self, limit: int = MAX_LOCATIONS) -> tuple[ChangedFile, ...]:
        """The files a reviewer should look at: still present after the commit, most churn first."""
        return tuple(f for f in self.files if f.exists_after)[:limit]


def _subject(message: str) -> str:
    for line in message.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _ordered_files(commit: Commit) -> list[ChangedFile]:
    files = [
        ChangedFile(
            path=change.path,
            old_path=change.old_path if change.old_path != change.path else None,
            change_type=change.change_type.value,
            added=change.added,
            deleted=change.deleted,
            binary=change.binary,
        )
        for change in commit.files
        if not change.is_submodule
    ]
    files.sort(key=lambda f: (-f.churn, f.path))
    return files


def read_commit_infos(repo: GitRepo, shas: Sequence[str]) -> dict[str, CommitInfo]:
    """Commit details of ``shas`` (one git process), with the first added line of each commit's hotspots."""
    infos: dict[str, CommitInfo] = {}
    for commit in read_commits(repo, list(shas)):
        files = _ordered_files(commit)
        hot = [f for f in files if f.exists_after][:MAX_LOCATIONS]
        lines = first_added_lines(repo, commit.sha, hot) if hot else {}
        files = [
            ChangedFile(f.path, f.old_path, f.change_type, f.added, f.deleted, f.binary, lines.get(f.path, 1))
            for f in files
        ]
        infos[commit.sha] = CommitInfo(
            sha=commit.sha,
            subject=_subject(commit.message),
            author_name=commit.author_name,
            author_email=commit.author_email,
            files=tuple(files),
        )
    return infos


def first_added_lines(repo: GitRepo, sha: str, files: Iterable[ChangedFile]) -> dict[str, int]:
    """Path -> first line (in the new file) of the first hunk that adds lines; files without one get 1.

    Prefixes are set explicitly so a user's ``diff.noprefix`` or ``diff.mnemonicPrefix`` cannot change the
    ``+++ b/<path>`` lines parsed here; old paths of renames are included so git still detects the rename.
    """
    wanted = list(files)
    specs: list[str] = []
    for f in wanted:
        specs.append(f":(literal){f.path}")
        if f.old_path:
            specs.append(f":(literal){f.old_path}")
    output = repo.run(
        "show", "--format=", "-U0", "-M", "--no-color", "--no-ext-diff", "--no-textconv",
        "--src-prefix=a/", "--dst-prefix=b/", sha, "--", *specs,
    )  # fmt: skip
    return parse_first_added_lines(output)


def parse_first_added_lines(diff: bytes) -> dict[str, int]:
    """From a ``-U0`` patch: each new path's first added line (``+c,d`` of its first hunk with ``d > 0``)."""
    found: dict[str, int] = {}
    current: str | None = None
    fallback: dict[str, int] = {}
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            name = header_name(line)
            current = decode_path(name[2:]) if name is not None and name.startswith(b"b/") else None
            continue
        if current is None or current in found or not line.startswith(b"@@ -"):
            continue  # not a hunk header (a merge's combined "@@@" hunks have no single new side)
        _a, _b, start, count = parse_hunk_header(line)
        if count > 0:
            found[current] = max(start, 1)
        else:
            fallback.setdefault(current, max(start, 1))  # a pure deletion: the line after which it was
    return {**fallback, **found}
