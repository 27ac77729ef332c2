"""Two or more processes on one workspace: every outcome is correct or a clean one-line refusal.

Real ``defectops`` processes started at once on a fresh workspace (issue #14: 6 of 12 processes failed and a
state was left empty). The lock makes the later ones wait and then find the work done.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gitrepo import RepoBuilder

DEFECTOPS = [sys.executable, "-c", "from defectops.cli import main; main()"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def _state_commits(workspace: Path) -> list[str]:
    states = sorted((workspace / "state").glob("*.sqlite"))
    assert len(states) == 1, states
    with sqlite3.connect(states[0]) as conn:
        return [row[0] for row in conn.execute("SELECT value FROM meta WHERE key = 'commits'")]


@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_concurrent_mine_processes_never_corrupt_the_workspace(
    handworked: RepoBuilder, tmp_path: Path
) -> None:
    for round_ in range(2):
        workspace = tmp_path / f"ws{round_}"
        processes = [
            subprocess.Popen(
                [*DEFECTOPS, "-w", str(workspace), "mine", "--repo", str(handworked.path), "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_env(),
            )
            for _ in range(3)
        ]
        results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in processes]  # type: ignore[union-attr]
        for code, _out, err in results:
            assert code == 0, err.decode()
            assert b"Traceback" not in err
        assert _state_commits(workspace) == ["7"]
        dataset = next((workspace / "datasets").glob("*/commits.parquet"))
        assert pd.read_parquet(dataset)["sha"].tolist() == handworked.shas
        assert not list(workspace.rglob("*.tmp")), "a temporary file was left behind"


def test_a_held_lock_is_a_one_line_refusal_that_writes_nothing(
    handworked: RepoBuilder, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    holder_code = (
        "import sys, time; from pathlib import Path; from defectops.locks import exclusive\n"
        "with exclusive(Path(sys.argv[1]), what='test holder'):\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    repo_id = subprocess.run(
        [sys.executable, "-c", f"from defectops.git import GitRepo; print(GitRepo.open({str(handworked.path)!r}).repo_id())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    lock = workspace / "state" / f"{repo_id}.sqlite.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(lock)], stdout=subprocess.PIPE, env=_env()
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        refused = subprocess.run(
            [*DEFECTOPS, "-w", str(workspace), "mine", "--repo", str(handworked.path)],
            capture_output=True, text=True, env=_env(DEFECTOPS_LOCK_WAIT_SECONDS="0"), timeout=120,
        )  # fmt: skip
        assert refused.returncode == 75, refused.stderr
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, refused.stderr
        assert "try again" in lines[0]
        assert f"pid {holder.pid}" in lines[0]
        assert not (workspace / "state" / f"{repo_id}.sqlite").exists()
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the dead holder's lock: the next process mines.
    done = subprocess.run(
        [*DEFECTOPS, "-w", str(workspace), "mine", "--repo", str(handworked.path), "-q"],
        capture_output=True, text=True, env=_env(DEFECTOPS_LOCK_WAIT_SECONDS="0"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _state_commits(workspace) == ["7"]
