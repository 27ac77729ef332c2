"""The labelling state kept in the workspace, so that new commits extend the labels without redoing history.

What is kept (``<workspace>/state/<repo_id>-labels/``): the line origins of the tip commit (every line of
every file of the last labelled commit, as one int32 array, a few MB for numpy), the commit table (sha,
parents, times) that origins index into, and a ``meta.json`` with the tip and a fingerprint of everything
that shaped the links (variant, filters, fix rules, issue list, ignore-revs). A later run whose fingerprint
matches and whose old tip is an ancestor of the new one streams only the new commits; anything else
rebuilds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import Workspace
from defectops.errors import StateError
from defectops.git import GitRepo
from defectops.labeling.history import CommitInfo
from defectops.labeling.origins import FileLines, LineState
from defectops.locks import replace_atomically

STATE_VERSION = 1


def state_folder(workspace: Workspace, repo_id: str) -> Path:
    return workspace.state_dir / f"{repo_id}-labels"


@dataclass
class StoredState:
    meta: dict[str, Any]
    commits: list[CommitInfo]
    tip_state: LineState


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    replace_atomically(path, write)


def commits_frame(commits: Sequence[CommitInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sha": [c.sha for c in commits],
            "parents": [" ".join(c.parents) for c in commits],
            "author_time": np.fromiter((c.author_time for c in commits), dtype=np.int64, count=len(commits)),
            "committer_time": np.fromiter(
                (c.committer_time for c in commits), dtype=np.int64, count=len(commits)
            ),
        }
    )


def save_state(folder: Path, meta: dict[str, Any], commits: Sequence[CommitInfo], tip: LineState) -> None:
    """Write the state; each file is replaced atomically, ``meta.json`` last (it marks the state valid)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta_path.unlink()  # a crash below leaves no meta, hence a rebuild, never a mismatched state
    frame = commits_frame(commits)
    _atomic_write(folder / "commits.parquet", lambda p: frame.to_parquet(p, index=False))

    items = sorted(tip.items())
    paths = b"\0".join(path for path, _ in items)
    blobs = b"".join(entry.blob for _, entry in items)
    lengths = np.fromiter((len(e.origins) for _, e in items), dtype=np.int64, count=len(items))
    total = int(lengths.sum()) if len(items) else 0
    origins = np.fromiter(chain.from_iterable(e.origins for _, e in items), dtype=np.int32, count=total)
    binary = np.fromiter((e.binary for _, e in items), dtype=np.bool_, count=len(items))

    def write_npz(path: Path) -> None:
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                paths=np.frombuffer(paths, dtype=np.uint8),
                blobs=np.frombuffer(blobs, dtype=np.uint8),
                lengths=lengths,
                origins=origins,
                binary=binary,
            )

    _atomic_write(folder / "lines.npz", write_npz)
    body = json.dumps({**meta, "state_version": STATE_VERSION, "files": len(items), "lines": total}, indent=2)
    _atomic_write(meta_path, lambda p: p.write_text(body + "\n", encoding="utf-8"))


def load_state(folder: Path) -> StoredState | None:
    """The stored state, or None when there is none (or an older format); a damaged one is a StateError."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("state_version") != STATE_VERSION:
            return None
        frame = pd.read_parquet(folder / "commits.parquet")
        with np.load(folder / "lines.npz") as data:
            paths_raw = data["paths"].tobytes()
            blobs_raw = data["blobs"].tobytes()
            lengths = data["lengths"]
            origins = data["origins"].tolist()
            binary = data["binary"].tolist()
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"{folder}: the labelling state is damaged ({exc}); run with --rebuild") from exc
    commits = [
        CommitInfo(
            sha=str(sha),
            parents=tuple(str(parents).split()),
            author_time=int(at),
            committer_time=int(ct),
            message="",
        )
        for sha, parents, at, ct in zip(
            frame["sha"], frame["parents"], frame["author_time"], frame["committer_time"], strict=True
        )
    ]
    paths = paths_raw.split(b"\0") if paths_raw or len(lengths) else []
    if len(paths) != len(lengths) or len(blobs_raw) != 40 * len(lengths):
        raise StateError(f"{folder}: the labelling state is inconsistent; run with --rebuild")
    files: dict[bytes, FileLines | None] = {}
    pos = 0
    for k, path in enumerate(paths):
        n = int(lengths[k])
        files[path] = FileLines(blobs_raw[40 * k : 40 * k + 40], origins[pos : pos + n], bool(binary[k]))
        pos += n
    return StoredState(meta=meta, commits=commits, tip_state=LineState(files))


def blame_loader(
    repo: GitRepo, sha: str, index_of: Callable[[str], int], ignore_whitespace: bool
) -> Callable[[bytes], FileLines | None]:
    """Files of a commit whose state was not kept, read on demand with ``git blame --porcelain``.

    Used only when new commits build on an old commit other than the stored tip (a branch forked long ago):
    ``git blame`` gives exactly the origins the pass would have computed, for just the files they touch.
    """

    def load(path: bytes) -> FileLines | None:
        name = os.fsdecode(path)
        listing = repo.run("ls-tree", "--full-tree", sha, "--", name).split(b"\n", 1)[0]
        meta, _, _ = listing.partition(b"\t")
        fields = meta.split()
        if len(fields) < 3 or fields[1] != b"blob":
            return None
        blob = fields[2]
        args = ["blame", "--porcelain"]
        if ignore_whitespace:
            args.append("-w")
        out = repo.run(*args, sha, "--", name)
        origins: list[int] = []
        binary = False
        current = -1
        for line in out.split(b"\n"):
            if line.startswith(b"\t"):
                origins.append(current)
                binary = binary or b"\0" in line
            elif len(line) >= 41 and line[40:41] == b" ":
                head = line[:40]
                if all(c in b"0123456789abcdef" for c in head):
                    current = index_of(head.decode("ascii"))
        if binary:
            return FileLines(blob, [], binary=True)
        return FileLines(blob, origins)

    return load
