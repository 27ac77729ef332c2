"""Every Kamei metric on a repository whose expected values were worked out by hand.

Timeline (days after 2020-01-01, author in brackets):
  c1 d0  [alice] add src/a.py (10 lines), README (2 lines)
  c2 d10 [bob]   "Fix crash in parser": src/a.py lines 3 and 4 changed (+2 -2)
  c3 d20 [alice] src/a.py +5 lines at the end, add docs/guide.md (3 lines)
  c4 d30 [alice] rename src/a.py -> lib/a.py (no content change)
  c5 d31 [carol] lib/a.py -1 line, README +1 line, message with a bare "#12"
  c6 d40 [bob]   delete docs/guide.md, add binary img/logo.png
  c7 d50 [bob]   re-add docs/guide.md (2 lines)
"""

from __future__ import annotations

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.git.repo import GitRepo
from defectops.mining.engine import MineOptions, Miner
from defectops.mining.metrics import entropy_of
from gitrepo import RepoBuilder

YEAR = 365.25

EXPECTED = {
    # c1: subsystems {src, root} -> ns 2; dirs {src, root} -> nd 2; la 10+2; nothing existed before.
    # entropy: p = 10/12, 2/12 -> -(5/6*log2(5/6) + 1/6*log2(1/6)) = 0.650022
    0: dict(ns=2, nd=2, nf=2, entropy=0.6500224216, la=12, ld=0, lt=0, fix=False, ndev=0, age=0.0, nuc=0,
            exp=0, rexp=0.0, sexp=0, churn=12),
    # c2: one file, lt = 10 lines before; ndev {alice}; age 10 - 0 days; nuc {c1}; bob has no prior change.
    1: dict(ns=1, nd=1, nf=1, entropy=0.0, la=2, ld=2, lt=10, fix=True, ndev=1, age=10.0, nuc=1,
            exp=0, rexp=0.0, sexp=0, churn=4),
    # c3: subsystems {src, docs}; la 5 + 3; lt = 10 (a.py) + 0 (guide is new);
    # entropy p = 5/8, 3/8 -> 0.954434; ndev of a.py {alice, bob} = 2; age of a.py 20 - 10 = 10 days;
    # nuc {c2}; alice exp 1 (c1); rexp 1/(1 + 20/365.25) = 0.948086; sexp: c1 touched src -> 1.
    2: dict(ns=2, nd=2, nf=2, entropy=0.9544340029, la=8, ld=0, lt=10, fix=False, ndev=2, age=10.0, nuc=1,
            exp=1, rexp=1 / (1 + 20 / YEAR), sexp=1, churn=8),
    # c4: rename keeps history: lt 15, ndev {alice, bob}, age 30 - 20 = 10, nuc {c3};
    # alice exp 2; rexp 1/(1+30/365.25) + 1/(1+10/365.25) = 1.897450; sexp: lib never touched -> 0.
    3: dict(ns=1, nd=1, nf=1, entropy=0.0, la=0, ld=0, lt=15, fix=False, ndev=2, age=10.0, nuc=1,
            exp=2, rexp=1 / (1 + 30 / YEAR) + 1 / (1 + 10 / YEAR), sexp=0, churn=0),
    # c5: subsystems {lib, root}; lt 15 + 2; entropy p = 1/2, 1/2 -> 1; ndev {alice, bob} u {alice} = 2;
    # age mean(31 - 30, 31 - 0) = 16; nuc {c4, c1} = 2; "#12" alone is no fix; carol is new.
    4: dict(ns=2, nd=2, nf=2, entropy=1.0, la=1, ld=1, lt=17, fix=False, ndev=2, age=16.0, nuc=2,
            exp=0, rexp=0.0, sexp=0, churn=2),
    # c6: subsystems {docs, img}; la 0 (binary counts 0); ld 3; lt 3 (deleted guide) + 0 (binary);
    # entropy: only the guide changed lines -> 0; ndev {alice}; age 40 - 20 = 20; nuc {c3};
    # bob exp 1 (c2); rexp 1/(1 + 30/365.25); sexp: c2 touched src only -> 0.
    5: dict(ns=2, nd=2, nf=2, entropy=0.0, la=0, ld=3, lt=3, fix=False, ndev=1, age=20.0, nuc=1,
            exp=1, rexp=1 / (1 + 30 / YEAR), sexp=0, churn=3),
    # c7: the re-added guide starts a new history: ndev 0, age 0, nuc 0; bob exp 2 (c2, c6);
    # rexp 1/(1 + 40/365.25) + 1/(1 + 10/365.25) = 1.874647; sexp: c6 touched docs -> 1.
    6: dict(ns=1, nd=1, nf=1, entropy=0.0, la=2, ld=0, lt=0, fix=False, ndev=0, age=0.0, nuc=0,
            exp=2, rexp=1 / (1 + 40 / YEAR) + 1 / (1 + 10 / YEAR), sexp=1, churn=2),
}  # fmt: skip


def mined(repo: RepoBuilder, workspace: Workspace) -> pd.DataFrame:
    miner = Miner(GitRepo.open(repo.path), workspace, MineOptions(workers=2))
    result = miner.mine()
    from defectops.data.mined import read_table

    return read_table(result.dataset).set_index("sha")


@pytest.mark.parametrize("index", sorted(EXPECTED))
def test_metric_values_match_hand_computation(
    handworked: RepoBuilder, workspace: Workspace, index: int
) -> None:
    frame = mined(handworked, workspace)
    row = frame.loc[handworked.shas[index]]
    for name, expected in EXPECTED[index].items():
        actual = row[name]
        if isinstance(expected, float):
            assert actual == pytest.approx(expected, abs=1e-9), name
        else:
            assert actual == expected, name


def test_rexp_is_not_one_over_age_plus_one(handworked: RepoBuilder, workspace: Workspace) -> None:
    # The known mistake 1/age + 1 would give 1/(20/365.25) + 1 = 19.26 for c3; the definition gives 0.948.
    frame = mined(handworked, workspace)
    assert frame.loc[handworked.shas[2], "rexp"] < 1.0


def test_identity_columns(handworked: RepoBuilder, workspace: Workspace) -> None:
    frame = mined(handworked, workspace)
    row = frame.loc[handworked.shas[1]]
    assert row["author_name"] == "Bob"
    assert row["author_email"] == "bob@example.com"
    assert row["author_time"] == pd.Timestamp("2020-01-11T00:00:00Z")
    assert row["message"] == "Fix crash in parser"
    assert row["parents"] == handworked.shas[0]
    assert not row["is_merge"]


def test_files_table_records_renames_binaries_and_deletes(
    handworked: RepoBuilder, workspace: Workspace
) -> None:
    miner = Miner(GitRepo.open(handworked.path), workspace)
    from defectops.data.mined import read_table

    files = read_table(miner.mine().files_dataset)
    rename = files[files["sha"] == handworked.shas[3]].iloc[0]
    assert (rename["path"], rename["old_path"], rename["change_type"]) == ("lib/a.py", "src/a.py", "R")
    c6 = files[files["sha"] == handworked.shas[5]].set_index("path")
    assert c6.loc["docs/guide.md", "change_type"] == "D"
    assert c6.loc["docs/guide.md", "deleted"] == 3
    assert bool(c6.loc["img/logo.png", "binary"]) is True
    assert c6.loc["img/logo.png", "added"] == 0


def test_entropy_of_hand_values() -> None:
    assert entropy_of([]) == 0.0
    assert entropy_of([0, 0]) == 0.0
    assert entropy_of([7]) == 0.0
    assert entropy_of([1, 1]) == pytest.approx(1.0)
    assert entropy_of([1, 1, 1, 1]) == pytest.approx(2.0)  # four equal shares: log2(4)
