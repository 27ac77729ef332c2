"""``defectops heal`` keeps the block-level model (``<name>-blocks``, #17) right as its labels mature.

A seeded Terraform history (tests/synthetic_terraform.py) is cloned at the commit before day 700;
``defectops run`` trains both models on it then (at day 700); their gate refuses both (too few labelled rows),
and a cycle the next day says why the block model has no champion and that too few block labels matured to
retry. With both v1 made champions by hand, the clone then receives the rest of the
history, and a heal cycle 100 days after its last commit (every label matured) finds the block labels that
became known since the block champion learnt its labels, trains a block challenger, and gates it on the
blocks of the commits made since then (which the champion never saw). A cycle one day later keeps the
champion: the last block challenger is younger than ``min_days_between_challengers``.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from defectops.config import HealSettings, Settings, Workspace
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, block_links, label_repository
from defectops.mining import block_features
from defectops.pipeline import Healer, RunOptions, block_model_name
from defectops.pipeline import run as run_main_job
from defectops.registry import CHALLENGER, CHAMPION, ModelRegistry
from gitrepo import EPOCH
from synthetic_terraform import build_terraform_history

pytestmark = pytest.mark.slow
WAITING = 90
T1 = EPOCH + timedelta(days=700)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Settings]:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    origin = build_terraform_history(tmp_path / "origin", commits=300)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", f"file://{origin.path}", str(clone)], check=True)
    before = origin.git("rev-list", "-1", f"--before={T1.isoformat()}", "HEAD").strip()
    subprocess.run(["git", "-C", str(clone), "reset", "-q", "--hard", before], check=True)
    return clone, Settings(workspace=tmp_path / "ws")


def test_heal_trains_and_gates_a_block_challenger_when_block_labels_mature(
    world: tuple[Path, Settings],
) -> None:
    clone, settings = world
    options = RunOptions(repo=clone, features="terraform", budget_seconds=0.0, recent=3, waiting_days=WAITING)
    result = run_main_job(options, settings, now=T1)
    assert result.registered is not None
    assert result.blocks is not None
    name = result.as_dict()["registry"]["model_name"]
    blocks_name = block_model_name(name)
    assert result.blocks.model_name == blocks_name
    registry = ModelRegistry.from_settings(settings)
    # With 300 commits up to day 700 the run's gate refuses both v1 (fewer than 50 labelled rows in the
    # window): no champion. The commit model's v1 is made champion by hand (heal needs one).
    assert (result.registered.promoted, result.blocks.promoted) == (False, False)
    registry.promote(name, 1, "test", "a champion to heal", now=T1, force=True)
    heal = HealSettings(gate_on="offline", budget_seconds=0.0, min_new_labels=100)
    healer = Healer.from_settings(settings, model_name=name, repo=clone, heal=heal)
    try:
        early = healer.cycle(T1 + timedelta(days=1))
    finally:
        healer.close()
    waiting = early.record("blocks")
    assert waiting is not None
    assert waiting.outcome == "kept"
    assert waiting.reason.startswith(f"{blocks_name}: no block champion (v1 archived: gate failed: ")
    assert "labelled rows 29 < 50" in waiting.reason
    assert waiting.reason.endswith("a challenger needs 100")
    # The block model's v1 made champion by hand too, so that heal has one to keep or replace.
    registry.promote(blocks_name, 1, "test", "a block champion to heal", now=T1, force=True)

    # New commits arrive; 100 days after the last one every label has matured.
    subprocess.run(["git", "-C", str(clone), "reset", "-q", "--hard", "origin/HEAD"], check=True)
    repo = GitRepo.open(clone)
    last = pd.Timestamp(int(repo.run("log", "-1", "--format=%ct").decode()), unit="s", tz="UTC")
    t2 = last.to_pydatetime() + timedelta(days=100)
    healer = Healer.from_settings(settings, model_name=name, repo=clone, heal=heal)
    try:
        report = healer.cycle(t2)
        again = healer.cycle(t2 + timedelta(days=1))
    finally:
        healer.close()

    record = report.record("blocks")
    assert record is not None, [(r.step, r.outcome, r.reason) for r in report.records]
    # Restated from the history: the non-removed blocks whose label became known after T1 (a fix after T1,
    # or the 90 waiting days ending after T1); every block is labelled at t2.
    labels = label_repository(
        repo, Workspace(settings.workspace), now=t2, options=LabelOptions(waiting_days=WAITING)
    )
    links, _ = block_links(repo, labels.links)
    frame = block_features(repo).frame
    frame = frame.loc[frame["change"] != "removed"]
    first_fix = links.groupby(["inducing_sha", "path", "address"])["fix_committed_at"].min()
    fixed = pd.to_datetime(
        pd.Series([first_fix.get((r.sha, r.path, r.address)) for r in frame.itertuples()], index=frame.index),
        utc=True,
    )
    committed = pd.to_datetime(frame["committed_at"], utc=True)
    known = fixed.where(fixed.notna() & (fixed >= committed), committed + timedelta(days=WAITING))
    known = known.where(fixed.notna() | (committed + timedelta(days=WAITING) <= pd.Timestamp(t2)))
    expected = int((known > pd.Timestamp(T1)).sum())
    assert record.evidence["new_labels"] == expected >= 100  # min_new_labels: a challenger is trained

    assert record.outcome in ("promoted", "archived")
    assert record.challenger_version == 2
    stage = record.evidence["stage"]
    assert stage["version"] == 2
    assert stage["gate"] in ("passed", "failed")
    assert stage["evaluate"]["test_commits"] >= 20  # commits made since T1, which v1 never saw
    assert pd.Timestamp(stage["evaluate"]["window"][0]) >= pd.Timestamp(T1)
    assert record.reason.startswith(f"{blocks_name}: {expected} block labels became known since v1")
    # The registry audits the block challenger as it does commit challengers.
    events = registry.history(blocks_name, alias=CHALLENGER)
    registered = [e for e in events if e.action == "register" and e.to_version == 2]
    assert [(e.who, e.why.startswith("heal: ")) for e in registered] == [("defectops heal", True)]
    champion_now = registry.aliases(blocks_name).get(CHAMPION)
    assert champion_now == (2 if record.outcome == "promoted" else 1)

    # One day later: the block labels are there, but the last block challenger is one day old (< 7).
    kept = again.record("blocks")
    assert kept is not None
    assert kept.outcome == "kept"
    assert "the last block challenger was registered 1.0 days ago (< 7)" in kept.reason
