"""The richer features of #20 on a small real repository, every expected value worked out by hand.

Timeline (days after 2020-01-01, author in brackets; "fix" = a fix message by mining/fixes.py):
  c1 d0   [alice] add src/app.py (10 lines), tests/test_app.py (4), docs/index.rst (3), setup.py (2)
  c2 d10  [bob]   fix: src/app.py line 2 changed (+1 -1), tests/test_app.py +2
  c3 d20  [alice] add src/util.py (5 lines), src/app.py +3 at the end
  c4 d50  [alice] fix: src/app.py -1 line, add README.md (1 line)
  c5 d60  [alice] src/app.py +2, src/util.py line 1 changed (+1 -1), add Makefile (3 lines)
  c6 d200 [bob]   rename src/app.py -> lib/app.py with +1 line
  c7 d201 [carol] fix: lib/app.py +1
  c8 d202 [carol] lib/app.py +1
  c9 d203 [alice] src/util.py +1
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.data import LINK_COLUMNS, compute_labels, read_table, training_table
from defectops.data.columns import RICH_FEATURES
from defectops.data.label_history import label_history_features
from defectops.git.repo import GitRepo
from defectops.mining.engine import MineOptions, Miner
from defectops.mining.paths import path_kind
from gitrepo import ALICE, BOB, CAROL, EPOCH, RepoBuilder, lines


def build_rich(path: Path) -> RepoBuilder:
    repo = RepoBuilder.create(path)
    app = lines(10, "app")
    repo.commit(
        "initial import",
        {"src/app.py": app, "tests/test_app.py": lines(4, "t"), "docs/index.rst": lines(3, "d"),
         "setup.py": lines(2, "s")},
        author=ALICE, days=0,
    )  # fmt: skip
    app = app.replace("app 1\n", "APP 1\n")
    repo.commit(
        "Fix crash in app", {"src/app.py": app, "tests/test_app.py": lines(6, "t")}, author=BOB, days=10
    )
    app += lines(3, "more")
    repo.commit("Add util", {"src/util.py": lines(5, "u"), "src/app.py": app}, author=ALICE, days=10)
    app = app.replace("app 5\n", "")
    repo.commit("Fix typo bug", {"src/app.py": app, "README.md": "hello\n"}, author=ALICE, days=30)
    app += lines(2, "late")
    util = lines(5, "u").replace("u 0\n", "U 0\n")
    repo.commit("Refactor", {"src/app.py": app, "src/util.py": util, "Makefile": lines(3, "m")}, author=ALICE,
                days=10)  # fmt: skip
    repo.move("src/app.py", "lib/app.py")
    app += "moved\n"
    repo.commit("Move app", {"lib/app.py": app}, author=BOB, days=140)
    app += "fixed\n"
    repo.commit("Fix bug in lib app", {"lib/app.py": app}, author=CAROL, days=1)
    app += "again\n"
    repo.commit("Grow app", {"lib/app.py": app}, author=CAROL, days=1)
    repo.commit("Grow util", {"src/util.py": util + "u more\n"}, author=ALICE, days=1)
    return repo


# Per commit: (file_fixes, dir_fixes, rel_churn, src_churn, test_churn, doc_churn, build_churn,
#              author_30d, author_90d, src_share, test_share, doc_share, build_share), worked out by hand;
# each share is that kind's churn over max(la + ld, 1):
EXPECTED = {
    # c1: nothing before; la 10+4+3+2 = 19, lt 0 -> rel_churn 19 / max(0, 1) = 19; app.py source 10,
    # test_app.py test 4, index.rst docs 3, setup.py build 2: shares 10/19, 4/19, 3/19, 2/19.
    0: (0, 0, 19.0, 10, 4, 3, 2, 0, 0, 10 / 19, 4 / 19, 3 / 19, 2 / 19),
    # c2: no fix before it; la 1+2, ld 1, lt 10+4 = 14 -> 4/14; source 2 (app), test 2. Bob is new.
    1: (0, 0, 4 / 14, 2, 2, 0, 0, 0, 0, 2 / 4, 2 / 4, 0, 0),
    # c3: app.py has 1 fix (c2), util.py is new; directory src had 1 fix; la 5+3, lt 10 (app; util new)
    # -> 8/10; source 8; Alice's c1 is 20 days old: counts for 30 and 90 days.
    2: (1, 1, 0.8, 8, 0, 0, 0, 1, 1, 1.0, 0, 0, 0),
    # c4: app.py 1 fix; dirs src (1) and root '' (0); la 1 (README), ld 1, lt 13 -> 2/13; source 1, docs 1
    # (each half of the churn of 2);
    # Alice's c1 is 50 days old (90 only) and c3 exactly 30 days old: "younger than 30 days" is false.
    3: (1, 1, 2 / 13, 1, 0, 1, 0, 0, 2, 1 / 2, 0, 1 / 2, 0),
    # c5: app.py 2 fixes (c2, c4), util.py 0, Makefile new; dirs src 2 (c2, c4) + root 1 (c4) = 3;
    # la 2+1+3 = 6, ld 1, lt 12 (app) + 5 (util) = 17 -> 7/17; source 2+2, build 3 (Makefile);
    # Alice's changes 60, 40 and 10 days old: 1 within 30 days, 3 within 90.
    4: (2, 3, 7 / 17, 4, 0, 0, 3, 1, 3, 4 / 7, 0, 0, 3 / 7),
    # c6: the rename keeps app.py's 2 fixes; the new directory lib has none; la 1, lt 14 -> 1/14;
    # Bob's c2 is 190 days old.
    5: (2, 0, 1 / 14, 1, 0, 0, 0, 0, 0, 1.0, 0, 0, 0),
    # c7: lib/app.py still 2 fixes, lib 0; la 1, lt 15 -> 1/15; Carol is new.
    6: (2, 0, 1 / 15, 1, 0, 0, 0, 0, 0, 1.0, 0, 0, 0),
    # c8: c7 was a fix: lib/app.py 3, lib 1; la 1, lt 16 -> 1/16; Carol's c7 is 1 day old.
    7: (3, 1, 1 / 16, 1, 0, 0, 0, 1, 1, 1.0, 0, 0, 0),
    # c9: util.py had no fix; src had 2 (c2, c4; c7 changed lib); la 1, lt 5 -> 1/5; Alice's c5 is 143 days
    # old, older ones more: none within 90 days.
    8: (0, 2, 0.2, 1, 0, 0, 0, 0, 0, 1.0, 0, 0, 0),
}


@pytest.fixture
def rich(tmp_path: Path) -> RepoBuilder:
    return build_rich(tmp_path / "repo")


def mine(repo: RepoBuilder, root: Path, rev: str = "HEAD") -> tuple[Miner, pd.DataFrame]:
    miner = Miner(GitRepo.open(repo.path), Workspace(root).ensure(), MineOptions(rev=rev, workers=2))
    return miner, read_table(miner.mine().dataset).set_index("sha")


@pytest.mark.parametrize("index", sorted(EXPECTED))
def test_rich_features_match_hand_computation(rich: RepoBuilder, tmp_path: Path, index: int) -> None:
    _, frame = mine(rich, tmp_path / "ws")
    row = frame.loc[rich.shas[index]]
    for name, expected in zip(RICH_FEATURES, EXPECTED[index], strict=True):
        assert row[name] == pytest.approx(expected, abs=1e-12), name


def test_incremental_and_jit_equal_one_full_run(rich: RepoBuilder, tmp_path: Path) -> None:
    _, full = mine(rich, tmp_path / "full")
    rich.git("branch", "-f", "upto", rich.shas[4])
    workspace = tmp_path / "inc"
    miner, _ = mine(rich, workspace, rev="upto")
    # just in time from the state mined up to c5 (lazy SQLite reads), then incrementally up to c9
    scored = miner.score([rich.shas[8]]).set_index("sha")
    rich.git("branch", "-f", "upto", rich.shas[8])
    _, incremental = mine(rich, workspace, rev="upto")
    for name in RICH_FEATURES:
        assert scored.loc[rich.shas[8], name] == full.loc[rich.shas[8], name], name
        assert incremental[name].equals(full.loc[incremental.index, name]), name


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("tests/conftest.py", "test"),
        ("numpy/core/tests/test_umath.py", "test"),
        ("src/FooTest.java", "test"),
        ("web/app.spec.ts", "test"),
        ("requirements-docs.txt", "build"),
        (".github/workflows/ci.yml", "build"),
        ("CMakeLists.txt", "build"),
        ("docs/conf.py", "docs"),
        ("CHANGES.rst", "docs"),
        ("LICENSE", "docs"),
        ("numpy/core/src/umath/loops.c.src", "source"),
        ("main.tf", "source"),
        ("img/logo.png", "other"),
        ("latest.py", "source"),  # "test" inside a word is not a test
    ],
)
def test_path_kinds(path: str, kind: str) -> None:
    assert path_kind(path) == kind


def _labels(repo: RepoBuilder, commits: pd.DataFrame, links: list[tuple[int, int]]) -> pd.DataFrame:
    """Labels with (inducing, fix) links between commits of the timeline, known at the fix's commit time."""
    frame = pd.DataFrame(
        [
            {"fix_sha": repo.shas[fix], "inducing_sha": repo.shas[bug], "path": None, "lines": [],
             "variant": "ag", "evidence": "test", "fix_committed_at": commits.loc[repo.shas[fix], "committer_time"]}
            for bug, fix in links
        ],
        columns=LINK_COLUMNS,
    )  # fmt: skip
    table = pd.DataFrame(
        {"sha": commits.index, "committed_at": commits["committer_time"], "is_merge": commits["is_merge"]}
    )
    return compute_labels(table, frame, now=EPOCH + timedelta(days=400), waiting_days=90)


def test_label_history_counts_only_labels_known_at_the_commit(rich: RepoBuilder, tmp_path: Path) -> None:
    miner, commits = mine(rich, tmp_path / "ws")
    files = read_table(miner.files_dataset_path)
    # c2 induced a defect revealed by c4 (day 50); c3 induced one revealed by c7 (day 201).
    labels = _labels(rich, commits, [(1, 3), (2, 6)])
    targets = commits.reset_index()
    features = label_history_features(targets, files, labels, targets, files)
    features.index = targets["sha"]
    # By hand (t = the commit's day; counted: defects whose fix came strictly before t):
    expected = {
        # c3 (d20): c2's defect is not known until day 50 -> 0 everywhere (its own label never counts).
        2: (0, 0, 0.0),
        # c5 (d60): c2 known (d50): app.py 1, util.py 0 (c3's fix is on day 201), Makefile 0; dirs src 1 and
        # root 0; Alice's earlier commits c1, c3, c4 hold no known defect -> 0/3.
        4: (1, 1, 0.0),
        # c6 (d200): lib/app.py is a new path (renames start over) and lib a new directory -> 0; Bob's one
        # earlier commit c2 is a known defect -> 1/1.
        5: (0, 0, 1.0),
        # c9 (d203): util.py was changed by c3 (known d201) and c5 -> 1; src by c2 and c3 (both known) -> 2;
        # Alice's earlier commits c1, c3, c4, c5: one known defect (c3) -> 1/4.
        8: (1, 2, 0.25),
    }
    for index, (file_bugs, dir_bugs, rate) in expected.items():
        row = features.loc[rich.shas[index]]
        assert (row["file_bugs"], row["dir_bugs"], row["author_bug_rate"]) == (file_bugs, dir_bugs, rate), (
            index
        )
    # The leak check: the same commit c5 seen with the labels known at its own time gives the same values.
    early = _labels(rich, commits, [(1, 3)])
    again = label_history_features(targets, files, early, targets, files)
    assert again.iloc[4].tolist() == features.iloc[4].tolist()


def test_training_table_carries_the_richer_columns(rich: RepoBuilder, tmp_path: Path) -> None:
    miner, commits = mine(rich, tmp_path / "ws")
    files = read_table(miner.files_dataset_path)
    labels = _labels(rich, commits, [(1, 3), (2, 6)])
    table = training_table(commits.reset_index(), labels, as_of=datetime(2021, 1, 1, tzinfo=UTC), files=files)
    assert {"file_fixes", "rel_churn", "file_bugs", "author_bug_rate"} <= set(table.columns)
    c9 = table.set_index("commit").loc[rich.shas[8]]
    assert (c9["file_bugs"], c9["dir_bugs"], c9["author_bug_rate"]) == (1.0, 2.0, 0.25)


@pytest.mark.parametrize("old_format", ["2", "3"])
def test_state_of_an_older_format_is_rebuilt_so_every_row_has_the_churn_shares(
    rich: RepoBuilder, tmp_path: Path, old_format: str
) -> None:
    # A state written before the churn shares (format 2) or under the earlier fix rules (3): appending to its
    # commit table would leave the old rows without the shares, or with fix flags of another rule, so the
    # next mine rebuilds the state and rewrites the table whole.
    _, full = mine(rich, tmp_path / "full")
    rich.git("branch", "-f", "upto", rich.shas[4])
    workspace = tmp_path / "old"
    miner, _ = mine(rich, workspace, rev="upto")
    with sqlite3.connect(miner.store.path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (old_format,))
    rich.git("branch", "-f", "upto", rich.shas[8])
    again = Miner(GitRepo.open(rich.path), Workspace(workspace).ensure(), MineOptions(rev="upto", workers=2))
    result = again.mine()
    assert result.rebuilt is not None
    assert "older defectops" in result.rebuilt
    frame = read_table(result.dataset).set_index("sha")
    assert len(frame) == len(full)
    for name in ("src_share", "test_share", "doc_share", "build_share"):
        assert frame[name].equals(full.loc[frame.index, name]), name
    assert frame.loc[rich.shas[0], "doc_share"] == pytest.approx(3 / 19)
