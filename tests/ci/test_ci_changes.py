"""What a commit changed and where a reviewer should look: files by churn and their first added line,
read from real git repositories (names with spaces and quotes, renames, deletions, binary files)."""

from __future__ import annotations

from pathlib import Path

from defectops.ci.changes import parse_first_added_lines, read_commit_infos
from defectops.git.repo import GitRepo
from gitrepo import RepoBuilder, lines


def test_files_by_churn_and_first_added_lines(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit(
        "start",
        {
            "a.txt": lines(10, "a"),
            "x y.txt": lines(3, "x"),
            'we"ird.txt': lines(2, "w"),
            "gone.txt": lines(4, "g"),
            "old/name.txt": lines(6, "n"),
            "img.bin": b"\x00\x01",
        },
    )
    repo.move("old/name.txt", "new/name.txt")
    sha = repo.commit(
        "second",
        {
            # a.txt: lines 5 and 6 replaced by three lines -> hunk "+5,3": first added line 5; la=3, ld=2
            "a.txt": lines(10, "a").replace("a 4\na 5\n", "A 4\nA 5\nA 5b\n"),
            # "x y.txt": two lines appended after line 3 -> first added line 4; la=2
            "x y.txt": lines(3, "x") + "x 3\nx 4\n",
            # we"ird.txt: line 2 removed only -> a pure deletion "+1,0": first line 1; ld=1
            'we"ird.txt': "w 0\n",
            "gone.txt": None,  # deleted: ld=4, not a location
            # renamed file, its last line changed -> "+6": la=1, ld=1
            "new/name.txt": lines(5, "n") + "N 5\n",
            "img.bin": b"\x00\x02\x03",  # binary: no line counts, no hunk -> first line 1
        },
    )
    info = read_commit_infos(GitRepo.open(repo.path), [sha])[sha]
    assert info.subject == "second"
    assert info.author_email == "alice@example.com"
    # churn: a.txt 5, gone.txt 4, new/name.txt 2, x y.txt 2, we"ird.txt 1, img.bin 0 (ties by path)
    assert [(f.path, f.added, f.deleted, f.change_type) for f in info.files] == [
        ("a.txt", 3, 2, "M"),
        ("gone.txt", 0, 4, "D"),
        ("new/name.txt", 1, 1, "R"),
        ("x y.txt", 2, 0, "M"),
        ('we"ird.txt', 0, 1, "M"),
        ("img.bin", 0, 0, "M"),
    ]
    assert info.files[2].old_path == "old/name.txt"
    # the hotspots (first three that still exist) carry their first added line
    assert [(f.path, f.first_line) for f in info.hotspots()] == [
        ("a.txt", 5),
        ("new/name.txt", 6),
        ("x y.txt", 4),
    ]


def test_first_line_of_quoted_names_and_pure_deletions(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("start", {"x y.txt": lines(3, "x"), 'we"ird.txt': lines(2, "w"), "img.bin": b"\x00\x01"})
    sha = repo.commit(
        "second", {"x y.txt": lines(3, "x") + "x 3\n", 'we"ird.txt': "w 0\n", "img.bin": b"\x00\x02"}
    )
    diff = GitRepo.open(repo.path).run("show", "--format=", "-U0", "--src-prefix=a/", "--dst-prefix=b/", sha)
    # x y.txt: "+4" (git writes "+++ b/x y.txt<TAB>"); we"ird.txt is quoted, "+1,0" is a pure deletion
    assert parse_first_added_lines(diff) == {"x y.txt": 4, 'we"ird.txt': 1}
