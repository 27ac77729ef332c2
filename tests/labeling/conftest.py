"""Shared fixtures of the labelling tests: a workspace, a labelling runner, and a blame cross-check."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.git.repo import GitRepo
from defectops.labeling.issues import IssueList
from defectops.labeling.pipeline import LabelOptions, LabelResult, label_repository
from defectops.labeling.szz import SzzOptions

# Far enough after every test repository's commits (they start 2020-01-01) that all waiting periods are over.
NOW = datetime(2022, 1, 1, tzinfo=UTC)

Runner = Callable[..., LabelResult]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def run_labels(workspace: Workspace) -> Runner:
    """Label a repository with the given SZZ options (keyword arguments of SzzOptions and LabelOptions)."""

    def run(
        path: Path,
        *,
        variant: str = "ag",
        now: datetime = NOW,
        issues: IssueList | None = None,
        rebuild: bool = False,
        store: bool = True,
        waiting_days: int = 90,
        max_incremental_commits: int = 300,
        **szz: Any,
    ) -> LabelResult:
        options = LabelOptions(
            szz=SzzOptions(variant=variant, **szz),
            waiting_days=waiting_days,
            max_incremental_commits=max_incremental_commits,
        )  # type: ignore[arg-type]
        return label_repository(
            GitRepo.open(path),
            workspace,
            now=now,
            options=options,
            issues=issues,
            rebuild=rebuild,
            store=store,
        )

    return run


def link_set(links: pd.DataFrame) -> set[tuple[str, str | None, str | None, tuple[int, ...], str]]:
    """Links as comparable tuples: (fix, inducing, path, lines, evidence)."""
    return {
        (
            row.fix_sha,
            row.inducing_sha if isinstance(row.inducing_sha, str) else None,
            row.path if isinstance(row.path, str) else None,
            tuple(int(x) for x in row.lines),
            row.evidence,
        )
        for row in links.itertuples()
    }


def blame(path: Path, rev: str, file: str, whitespace: bool, extra: tuple[str, ...] = ()) -> list[str]:
    """``git blame [-w]`` of one file at one revision: the origin sha of each line."""
    args = ["git", "-C", str(path), "blame", "--porcelain", *extra]
    if whitespace:
        args.append("-w")
    out = subprocess.run([*args, rev, "--", file], capture_output=True, check=True).stdout
    origins: list[str] = []
    current = ""
    for line in out.split(b"\n"):
        if line.startswith(b"\t"):
            origins.append(current)
        elif len(line) > 41 and line[40:41] == b" " and all(c in b"0123456789abcdef" for c in line[:40]):
            current = line[:40].decode()
    return origins


def assert_links_match_blame(path: Path, links: pd.DataFrame, whitespace: bool) -> int:
    """Every SZZ link line must be what ``git blame`` on the fix's parent says; returns the lines checked."""
    checked = 0
    for row in links.itertuples():
        if not isinstance(row.inducing_sha, str) or not str(row.evidence).startswith("szz"):
            continue
        origins = blame(path, f"{row.fix_sha}^", str(row.path), whitespace)
        for line in row.lines:
            assert origins[int(line) - 1] == row.inducing_sha, (row.fix_sha, row.path, line)
            checked += 1
    return checked


@pytest.fixture(name="link_set")
def link_set_fixture() -> Callable[
    [pd.DataFrame], set[tuple[str, str | None, str | None, tuple[int, ...], str]]
]:
    return link_set


@pytest.fixture(name="check_blame")
def check_blame_fixture() -> Callable[[Path, pd.DataFrame, bool], int]:
    return assert_links_match_blame


@pytest.fixture(name="blame_origins")
def blame_origins_fixture() -> Callable[..., list[str]]:
    return blame
