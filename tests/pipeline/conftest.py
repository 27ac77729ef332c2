"""One synthetic repository for the pipeline tests, built once per session (it takes a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitrepo import RepoBuilder
from synthetic_history import build_synthetic


@pytest.fixture(scope="session")
def synthetic_repo(tmp_path_factory: pytest.TempPathFactory) -> RepoBuilder:
    return build_synthetic(Path(tmp_path_factory.mktemp("synthetic")) / "repo")
