"""Fixtures for mining tests: the hand-worked repository and a workspace per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.config import Workspace
from gitrepo import ALICE, BOB, CAROL, RepoBuilder, lines


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws").ensure()


def build_handworked(path: Path) -> RepoBuilder:
    """Seven commits whose metrics are worked out by hand in test_change_metrics.py."""
    repo = RepoBuilder.create(path)
    a10 = lines(10, "a")
    repo.commit("initial import", {"src/a.py": a10, "README": "one\ntwo\n"}, author=ALICE, days=0)
    a10_fixed = a10.replace("a 3\n", "A 3\n").replace("a 4\n", "A 4\n")
    repo.commit("Fix crash in parser", {"src/a.py": a10_fixed}, author=BOB, days=10)
    repo.commit(
        "Add guide",
        {"src/a.py": a10_fixed + lines(5, "b"), "docs/guide.md": "g1\ng2\ng3\n"},
        author=ALICE,
        days=10,
    )
    repo.move("src/a.py", "lib/a.py")
    repo.commit("Move a to lib", author=ALICE, days=10)
    repo.commit(
        "Tweak a and readme (#12)",
        {"lib/a.py": (a10_fixed + lines(5, "b")).replace("b 4\n", ""), "README": "one\ntwo\nthree\n"},
        author=CAROL,
        days=1,
    )
    repo.commit(
        "Remove guide", {"docs/guide.md": None, "img/logo.png": b"\x89PNG\x00\x01\x02"}, author=BOB, days=9
    )
    repo.commit("Bring back the guide", {"docs/guide.md": "new 1\nnew 2\n"}, author=BOB, days=10)
    return repo


@pytest.fixture
def handworked(tmp_path: Path) -> RepoBuilder:
    return build_handworked(tmp_path / "repo")
