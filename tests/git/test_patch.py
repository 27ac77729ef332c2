"""git's patch format: quoted paths, ``---``/``+++`` names and ``-U0`` hunk headers, by hand and on real
git output (names with spaces, quotes, tabs and non-ASCII bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.git import GitRepo, header_name, parse_hunk_header, unquote_path
from gitrepo import RepoBuilder, lines


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"plain/path.txt", b"plain/path.txt"),
        (b"x y.txt", b"x y.txt"),
        (b'"we\\"ird.txt"', b'we"ird.txt'),
        (b'"a\\tb"', b"a\tb"),
        (b'"back\\\\slash"', b"back\\slash"),
        (b'"\\303\\251t\\303\\251.txt"', "été.txt".encode()),
        (b'"\\a\\b\\n\\v\\f\\r"', b"\a\b\n\v\f\r"),
        (b'"', b'"'),  # too short to be quoted
        (b'"unterminated', b'"unterminated'),
    ],
)
def test_unquote_path(raw: bytes, expected: bytes) -> None:
    assert unquote_path(raw) == expected


def test_header_name() -> None:
    assert header_name(b"+++ b/src/a.py") == b"b/src/a.py"
    assert header_name(b"--- a/x y.txt\t") == b"a/x y.txt"  # the TAB git appends to names with spaces
    assert header_name(b'+++ "b/we\\"ird.txt"') == b'b/we"ird.txt'
    assert header_name(b"--- /dev/null") is None
    assert header_name(b"+++ /dev/null") is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"@@ -5,2 +5,3 @@", (5, 2, 5, 3)),
        (b"@@ -3,0 +4,2 @@ def f():", (3, 0, 4, 2)),
        (b"@@ -2 +1,0 @@", (2, 1, 1, 0)),
        (b"@@ -0,0 +1 @@", (0, 0, 1, 1)),
        (b"@@ -10 +10 @@ a @@ b", (10, 1, 10, 1)),
    ],
)
def test_parse_hunk_header(line: bytes, expected: tuple[int, int, int, int]) -> None:
    assert parse_hunk_header(line) == expected


def test_real_git_patch(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    names = ["x y.txt", 'we"ird.txt', "tab\there.txt", "été.txt"]
    repo.commit("start", {name: lines(3, "v") for name in names})
    sha = repo.commit("second", {name: lines(3, "v").replace("v 1\n", "V 1\nV 1b\n") for name in names})
    diff = GitRepo.open(repo.path).run("show", "--format=", "-U0", "--src-prefix=a/", "--dst-prefix=b/", sha)
    rows = diff.split(b"\n")
    olds = [header_name(row) for row in rows if row.startswith(b"--- ")]
    news = [header_name(row) for row in rows if row.startswith(b"+++ ")]
    hunks = [parse_hunk_header(row) for row in rows if row.startswith(b"@@ ")]
    assert sorted(olds) == sorted(b"a/" + name.encode() for name in names)
    assert sorted(news) == sorted(b"b/" + name.encode() for name in names)
    assert hunks == [(2, 1, 2, 2)] * len(names)
