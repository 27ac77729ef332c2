"""The block-level path end to end on a seeded real Terraform history: SZZ links placed in blocks, block
features, and the block-level model judged on a held-out window in time.

By construction (tests/synthetic_terraform.py) every "Fix <file>" commit corrects one attribute line of the
block ``aws_instance.r<n>`` that the commit "Add r<n> to <file>" added; regulars only tweak ``ami`` lines.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.data import BLOCK_FEATURES
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, block_links, label_repository
from defectops.mining import block_features
from defectops.training import (
    block_training_table,
    evaluate_block_model,
    new_block_labels,
    train_block_model,
)
from gitrepo import RepoBuilder
from synthetic_terraform import build_terraform_history

NOW = datetime(2024, 1, 1, tzinfo=UTC)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[RepoBuilder, pd.DataFrame, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tfblocks")
    builder = build_terraform_history(root / "r", commits=160)
    repo = GitRepo.open(builder.path)
    labels = label_repository(
        repo, Workspace(root / "ws").ensure(), now=NOW, options=LabelOptions(waiting_days=90)
    )
    links, stats = block_links(repo, labels.links)
    assert stats.dropped == {}
    return builder, block_features(repo).frame, links


def test_every_fix_lands_in_the_block_it_corrects(world) -> None:
    info, _blocks, links = world
    adds: dict[str, str] = {}  # n -> sha of "Add r<n> to ..."
    expected: set[tuple[str, str, str, str]] = set()
    log = info.git("log", "--format=%H %s", "--reverse").splitlines()
    for line in log:
        sha, subject = line.split(" ", 1)
        if m := re.match(r"Add r(\d+) to (\S+)", subject):
            adds[m.group(1)] = sha
        elif m := re.match(r"Fix (\S+)", subject):
            diff = info.git("show", "--format=", "-U0", sha)
            (removed,) = [x for x in diff.splitlines() if x.startswith("-  attr_")]
            n = re.search(r"change (\d+) value", removed).group(1)  # type: ignore[union-attr]
            expected.add((sha, adds[n], m.group(1), f"aws_instance.r{n}"))
    assert expected
    got = {(r.fix_sha, r.inducing_sha, r.path, r.address) for r in links.itertuples(index=False)}
    assert got == expected
    assert set(links["lines"]) == {1}


def test_block_model_is_judged_on_a_later_window(world) -> None:
    _info, blocks, links = world
    evaluation = evaluate_block_model(blocks, links, now=NOW)
    start = pd.Timestamp(evaluation.train_labels_as_of)
    # The window: blocks of the latest 20% of commits with labelled blocks; training ended a waiting
    # period before it began.
    assert pd.Timestamp(evaluation.window[0]) == start
    labelled_commits = blocks.loc[
        (blocks["change"] != "removed") & (blocks["committed_at"] + timedelta(days=90) <= NOW), "sha"
    ].nunique()
    assert evaluation.test_commits == round(labelled_commits * 0.2)
    trained_on = blocks.loc[
        (blocks["change"] != "removed") & (blocks["committed_at"] + timedelta(days=90) <= start)
    ]
    assert evaluation.train_rows == len(trained_on)
    assert evaluation.test_defective > 0
    assert evaluation.train_defective > 0
    # Added newcomer blocks vs one-line tweaks: the features separate them.
    assert evaluation.metrics["roc_auc"] > 0.8
    assert 0.0 <= evaluation.metrics["recall_at_20_effort"] <= 1.0

    fitted = train_block_model(block_training_table(blocks, links, at=NOW))
    assert list(fitted.features) == list(BLOCK_FEATURES)


def test_an_online_block_model_learns_the_labels_that_matured_by_partial_fit(world) -> None:
    _info, blocks, links = world
    # The champion learnt its labels 200 days before the last commit; NOW is years later (all known).
    since = pd.Timestamp(blocks["committed_at"].max()).to_pydatetime() - timedelta(days=200)
    base = train_block_model(block_training_table(blocks, links, at=since), kind="online").model
    counts = base.class_counts_.copy()
    new = new_block_labels(blocks, links, at=NOW, since=since)
    # Restated by hand: non-removed blocks labelled at NOW whose label became known after `since` (a fix
    # after it, or the waiting period ending after it), the oldest known first.
    known = blocks.loc[blocks["change"] != "removed"].merge(
        links.groupby(["inducing_sha", "path", "address"], as_index=False)
        .agg(fixed=("fix_committed_at", "min"))
        .rename(columns={"inducing_sha": "_s"}),
        left_on=["sha", "path", "address"],
        right_on=["_s", "path", "address"],
        how="left",
    )
    fixed = pd.to_datetime(known["fixed"], utc=True)
    clean_at = pd.to_datetime(known["committed_at"], utc=True) + timedelta(days=90)
    when = fixed.where(fixed.notna() & (fixed <= NOW), clean_at.where(clean_at <= NOW))
    expected = known.loc[when.notna() & (when > pd.Timestamp(since))]
    assert len(new) == len(expected) > 0
    assert int(new["label"].sum()) == int((fixed.notna() & (fixed <= NOW))[expected.index].sum())

    updated = train_block_model(new, update=base).model
    assert (base.class_counts_ == counts).all()  # the champion itself never changes
    assert updated.class_counts_.tolist() == [
        counts[0] + (new["label"] == 0).sum(),
        counts[1] + (new["label"] == 1).sum(),
    ]
    # The judged copy learnt only what was known when the window (commits since `since`) began.
    evaluation = evaluate_block_model(blocks, links, now=NOW, since=since, update=base)
    assert evaluation.extra["kind"] == "online update"
    assert evaluation.train_rows < len(new)
    assert 0.0 <= evaluation.metrics["roc_auc"] <= 1.0
