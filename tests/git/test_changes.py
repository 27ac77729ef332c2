"""The changed lines of commits as text (``git.changed_lines``): what the hybrid model embeds."""

from __future__ import annotations

from pathlib import Path

from defectops.git import GitRepo, changed_lines
from gitrepo import RepoBuilder


def test_each_commit_lists_its_files_with_removed_and_added_lines(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    first = repo.commit("add app", {"app.py": "a = 1\nb = 2\nc = 3\n"}, days=0)
    # "-- b" is a line whose removal git prints as "--- b": it is content, not a file header
    second = repo.commit(
        "edit app, add notes",
        {"app.py": "a = 1\nb = 20\nc = 3\n-- b\n", "notes.txt": "hello\n"},
        days=1,
    )
    third = repo.commit("drop the marker", {"app.py": "a = 1\nb = 20\nc = 3\n", "notes.txt": None}, days=1)
    binary = repo.commit("add a logo", {"logo.bin": b"\x00\x01\x02"}, days=1)
    texts = changed_lines(GitRepo.open(repo.path), [third, first, second, binary])
    assert list(texts) == [third, first, second, binary]  # the order asked for
    assert texts[first] == "app.py\n+a = 1\n+b = 2\n+c = 3"
    assert texts[second] == "app.py\n-b = 2\n+b = 20\n+-- b\nnotes.txt\n+hello"
    assert texts[third] == "app.py\n--- b\nnotes.txt\n-hello"
    assert texts[binary] == "Binary files /dev/null and b/logo.bin differ"  # no header, no lines


def test_the_text_is_cut_at_max_chars_and_a_merge_has_none(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("base", {"a.txt": "x\n"}, days=0)
    big = repo.commit("big", {"a.txt": "".join(f"line {i}\n" for i in range(1000))}, days=1)
    repo.git("checkout", "-q", "-b", "side", "HEAD~1")
    repo.commit("side", {"b.txt": "y\n"}, days=1)
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-edit", "side")
    merge = repo.head()
    git = GitRepo.open(repo.path)
    texts = changed_lines(git, [big, merge], max_chars=50)
    # "a.txt" (5) + "\n" + "-x" (2) + "\n" + "+line 0" (7) ... cut so that the text stays within 50 characters
    assert len(texts[big]) <= 50
    assert texts[big].startswith("a.txt\n-x\n+line 0\n+line 1\n")
    assert texts[merge] == ""
    assert changed_lines(git, []) == {}
