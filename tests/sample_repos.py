"""Small repositories with known histories, shared by mining and labelling tests."""

from __future__ import annotations

from pathlib import Path

from gitrepo import ALICE, BOB, CAROL, RepoBuilder, lines


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


def build_with_merges(path: Path) -> RepoBuilder:
    """main and a feature branch that both change files, merged back, then more work on main."""
    repo = RepoBuilder.create(path)
    repo.commit("start", {"core/x.c": lines(20, "x"), "core/y.c": lines(8, "y")}, author=ALICE, days=0)
    repo.commit("grow x", {"core/x.c": lines(25, "x")}, author=BOB, days=3)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature: y", {"core/y.c": lines(12, "y"), "ui/z.js": lines(4, "z")}, author=CAROL, days=1)
    repo.commit("feature: fix bug in z", {"ui/z.js": lines(3, "z") + "zz\n"}, author=CAROL, days=1)
    repo.git("checkout", "-q", "main")
    repo.commit("main: x again", {"core/x.c": lines(30, "x")}, author=ALICE, days=1)
    repo.clock = repo.clock.replace(day=repo.clock.day + 1)
    env = {
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_AUTHOR_DATE": repo.clock.isoformat(),
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        "GIT_COMMITTER_DATE": repo.clock.isoformat(),
    }
    repo.git("merge", "-q", "--no-ff", "-m", "Merge branch feature", "feature", env=env)
    repo.shas.append(repo.head())
    repo.commit("after merge", {"ui/z.js": lines(6, "z"), "core/y.c": lines(13, "y")}, author=BOB, days=2)
    return repo
