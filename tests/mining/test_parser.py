"""The git log parser on real git output: any chunking gives the same commits, and odd input is refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from defectops.errors import GitError
from defectops.git.log import LOG_OPTIONS, MARKER, parse_log
from defectops.git.records import ChangeType
from defectops.git.repo import GitRepo
from gitrepo import RepoBuilder


@pytest.fixture
def log_output(tmp_path: Path) -> bytes:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("add files", {"a/one.py": "1\n2\n3\n", "b.bin": b"\x00\x01\x02", "two.txt": "x\n"})
    repo.commit("edit and binary", {"a/one.py": "1\n2\nthree\n4\n", "b.bin": b"\x00\x09"})
    repo.move("two.txt", "c/two.txt")
    repo.commit("move")
    # A message that ends with the marker's text must not start a commit of its own.
    repo.commit("tricky\n\n" + MARKER.decode(), {"a/one.py": "1\n"})
    repo.commit("remove", {"a/one.py": None})
    return GitRepo.open(repo.path).run(*LOG_OPTIONS, "--reverse", "HEAD")


def test_whole_output(log_output: bytes) -> None:
    commits = list(parse_log([log_output]))
    assert [c.message.splitlines()[0] for c in commits] == [
        "add files",
        "edit and binary",
        "move",
        "tricky",
        "remove",
    ]
    added, edited, moved, tricky, removed = commits
    assert sorted((f.path, f.change_type, f.added, f.binary) for f in added.files) == [
        ("a/one.py", ChangeType.ADDED, 3, False),
        ("b.bin", ChangeType.ADDED, 0, True),
        ("two.txt", ChangeType.ADDED, 1, False),
    ]
    one = next(f for f in edited.files if f.path == "a/one.py")
    assert (one.added, one.deleted, one.change_type) == (2, 1, ChangeType.MODIFIED)
    assert [(f.old_path, f.path, f.change_type) for f in moved.files] == [
        ("two.txt", "c/two.txt", ChangeType.RENAMED)
    ]
    assert tricky.message.endswith(MARKER.decode())
    assert [(f.path, f.added, f.deleted) for f in tricky.files] == [("a/one.py", 0, 3)]
    assert [(f.path, f.change_type, f.deleted) for f in removed.files] == [
        ("a/one.py", ChangeType.DELETED, 1)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_any_chunking_gives_the_same_commits(log_output: bytes, seed: int) -> None:
    rng = random.Random(seed)
    pieces = []
    at = 0
    while at < len(log_output):
        step = rng.choice([1, 2, 3, 11, 64, 500])
        pieces.append(log_output[at : at + step])
        at += step
    assert list(parse_log(pieces)) == list(parse_log([log_output]))


def test_empty_output_has_no_commits() -> None:
    assert list(parse_log([b""])) == []
    assert list(parse_log([b"\n"])) == []


@pytest.mark.parametrize(
    "output",
    [
        b"garbage\0",
        MARKER + b"\0abc\0",  # a header without its fields
        MARKER + b"\0" + b"0" * 40 + b"\0\0n\0e\0" + b"1\0" * 2 + b"msg\0\0\nnot a raw line\0",
        MARKER + b"\0" + b"0" * 40 + b"\0\0n\0e\0" + b"1\0" * 2 + b"msg\0\0\n1\t2\tfile\0",  # no raw line
    ],
)
def test_malformed_output_is_a_git_error(output: bytes) -> None:
    with pytest.raises(GitError):
        list(parse_log([output]))
