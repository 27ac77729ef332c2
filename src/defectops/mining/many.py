"""Mining many repositories: local processes, or an existing Dask cluster.

Each repository is mined by one task with one git process (parallelism comes from running repositories side by
side), into its own state and dataset in the workspace; ``--out DIR`` gets a copy partitioned by repository
(``DIR/repo=<id>/commits.parquet``), readable as one Hive-partitioned dataset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from defectops.config import child_environment
from defectops.errors import DefectOpsError, InputError

_URL_PREFIXES = ("http://", "https://", "ssh://", "git://", "file://", "git@")


def read_repository_list(path: Path) -> list[str]:
    """One path or clone URL a line; blank lines and ``#`` comments are ignored."""
    if not path.is_file():
        raise InputError(f"--repos {path}: no such file")
    entries = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    entries = [e for e in entries if e and not e.startswith("#")]
    if not entries:
        raise InputError(f"--repos {path}: the file lists no repositories")
    return list(dict.fromkeys(entries))


def _local_checkout(entry: str, workspace: Path) -> Path:
    """A local path as is; a URL cloned (or fetched again) into the workspace's clones folder."""
    if not entry.startswith(_URL_PREFIXES):
        return Path(entry).expanduser()
    name = entry.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
    import hashlib

    target = workspace / "clones" / f"{name}-{hashlib.sha256(entry.encode()).hexdigest()[:8]}"
    env = child_environment({"GIT_TERMINAL_PROMPT": "0"})
    if (target / ".git").exists() or (target / "HEAD").exists():
        cmd = ["git", "-C", str(target), "fetch", "--quiet", "origin", "+HEAD:refs/remotes/origin/HEAD"]
        subprocess.run(cmd, capture_output=True, env=env, check=False)
        subprocess.run(
            ["git", "-C", str(target), "reset", "--quiet", "--hard", "origin/HEAD"], env=env, check=False
        )
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["git", "clone", "--quiet", entry, str(target)], capture_output=True, env=env, check=False
    )
    if proc.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"cannot clone {entry}: {message[-1] if message else 'git clone failed'}")
    return target


def mine_one(entry: str, workspace_root: str, out: str | None) -> dict[str, Any]:
    """Mine one repository; errors are returned, not raised, so one bad entry does not stop the others."""
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.mining.engine import MineOptions, Miner

    workspace = Workspace(Path(workspace_root)).ensure()
    try:
        repo = GitRepo.open(_local_checkout(entry, workspace.root))
        miner = Miner(repo, workspace, MineOptions(workers=1))
        result = miner.mine()
        document = {"entry": entry, **result.as_dict()}
        if out is not None:
            target = Path(out) / f"repo={result.repo_id}"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.dataset, target / "commits.parquet")
            shutil.copyfile(result.files_dataset, target / "files.parquet")
            document["out"] = str(target)
        return document
    except DefectOpsError as exc:
        return {"entry": entry, "repo": entry, "error": str(exc)}


def mine_many(
    repos_file: Path,
    *,
    workspace_root: Path,
    workers: int | None = None,
    dask_address: str | None = None,
    out: Path | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """Mine every repository of ``repos_file``; returns one summary document."""
    from defectops.config import Workspace

    entries = read_repository_list(repos_file)
    root = Workspace(workspace_root).ensure()
    out_arg = str(out.resolve()) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if dask_address is not None:
        results = _run_dask(dask_address, entries, str(root.root), out_arg)
    else:
        results = _run_local(entries, str(root.root), out_arg, workers or os.cpu_count() or 1)
    failed = [r for r in results if "error" in r]
    return {
        "repositories": results,
        "mined": len(results) - len(failed),
        "failed": len(failed),
        "out": out_arg,
    }


def _run_local(entries: list[str], root: str, out: str | None, workers: int) -> list[dict[str, Any]]:
    if workers <= 1 or len(entries) == 1:
        return [mine_one(entry, root, out) for entry in entries]
    with ProcessPoolExecutor(max_workers=min(workers, len(entries))) as pool:
        return list(pool.map(mine_one, entries, [root] * len(entries), [out] * len(entries)))


def _run_dask(address: str, entries: list[str], root: str, out: str | None) -> list[dict[str, Any]]:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise InputError("--dask needs the 'distributed' package") from exc
    try:
        client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise InputError(f"--dask {address}: cannot reach the scheduler ({exc})") from exc
    with client:
        task: Callable[..., dict[str, Any]] = mine_one
        futures = client.map(task, entries, workspace_root=root, out=out, pure=False)
        gathered: list[dict[str, Any]] = client.gather(futures)  # type: ignore[no-untyped-call]
    return gathered
