"""Fixtures for mining tests: the hand-worked repository and a workspace per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.config import Workspace
from gitrepo import RepoBuilder
from sample_repos import build_handworked


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def handworked(tmp_path: Path) -> RepoBuilder:
    return build_handworked(tmp_path / "repo")
