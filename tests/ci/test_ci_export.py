"""``defectops models export`` against a real embedded MLflow registry, and ``predict`` with its output.

One test logs real models (MLflow's SQLite store is migrated once per workspace, which costs seconds), so
everything that needs the registry is checked in it: the export's metadata, that the exported folder scores
exactly like the registry's champion, and the errors for a taken folder, an unknown model or alias, and a
registered model that is not a defectops model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from defectops.ci.model_source import EXPORT_FILE
from defectops.config import Settings
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import log_training_run
from defectops.registry.tracking import TrackingConfig
from defectops.training.models import load_model, make_model
from gitrepo import RepoBuilder

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEATURES = ["la", "ld", "nf"]


def _log(model: Any, frame: Any, y: Any, config: TrackingConfig, threshold: float) -> str:
    run = log_training_run(
        model,
        features=FEATURES,
        reference=frame.assign(label=y),
        params={"kind": "test"},
        metrics={"roc_auc": 0.9},
        dataset_fingerprint="fp-ci-export",
        config=config,
        threshold=threshold,
    )
    return run.model_uri


@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_export_scores_like_the_registry_champion(
    cli: Callable[..., Any], risky_repo: RepoBuilder, tmp_path: Path, training_data: tuple[Any, Any]
) -> None:
    frame, y = training_data
    model = make_model("logreg", features=tuple(FEATURES)).fit(frame, y)
    config = TrackingConfig.from_settings(Settings())
    registry = ModelRegistry(config)
    registry.register("jit", _log(model, frame, y, config, model.threshold_), who="ci-test", why="t", now=NOW)
    registry.promote("jit", 1, "ci-test", "first champion", now=NOW)

    out = tmp_path / "exported"
    exported = cli("models", "export", "--model-name", "jit", "--out", str(out), "--json")
    assert exported.code == 0, exported
    doc = json.loads(exported.out)
    bands = model.risk_bands()
    meta = json.loads((out / EXPORT_FILE).read_text())
    assert doc == {"out": str(out), **meta}
    assert meta["format"] == 1
    assert (meta["name"], meta["version"], meta["alias"], meta["kind"]) == ("jit", "1", "champion", "logreg")
    assert meta["threshold"] == model.threshold_
    assert meta["bands"] == bands.as_dict()
    assert meta["features"] == FEATURES
    assert meta["input_columns"] == FEATURES
    assert meta["model_uri"] == "models:/jit/1"
    assert load_model(out).threshold_ == model.threshold_  # a plain JITModel.save folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left

    repo = str(risky_repo.path)
    shas = risky_repo.shas
    args = ("predict", "--repo", repo, "--range", f"{shas[0]}..HEAD", "--format", "json")
    from_dir = json.loads(cli(*args, "--model-dir", str(out)).out)
    from_registry = json.loads(cli(*args, "--model-name", "jit").out)
    assert from_dir["model"]["name"] == from_registry["model"]["name"] == "jit"
    assert from_dir["model"]["version"] == from_registry["model"]["version"] == "1"
    assert from_dir["model"]["bands"] == from_registry["model"]["bands"] == meta["bands"]
    assert [c["probability"] for c in from_dir["commits"]] == [
        c["probability"] for c in from_registry["commits"]
    ]
    assert [c["risk_band"] for c in from_dir["commits"]] == ["minimal", "high", "minimal"]

    taken = cli("models", "export", "--model-name", "jit", "--out", str(out))
    assert taken.code == 2
    assert "exists and is not an empty folder" in taken.err
    unknown = cli("models", "export", "--model-name", "nope", "--out", str(tmp_path / "x"))
    assert unknown.code == 7
    assert "unknown model 'nope'" in unknown.err
    no_alias = cli(
        "models", "export", "--model-name", "jit", "--alias", "challenger", "--out", str(tmp_path / "y")
    )
    assert no_alias.code == 7
    assert "has no 'challenger' alias" in no_alias.err

    plain = LogisticRegression(max_iter=500).fit(frame[FEATURES], y)
    registry.register("plain", _log(plain, frame, y, config, 0.5), who="ci-test", why="t", now=NOW)
    registry.promote("plain", 1, "ci-test", "t", now=NOW)
    foreign = cli("models", "export", "--model-name", "plain", "--out", str(tmp_path / "z"))
    assert foreign.code == 6
    assert "not a defectops model" in foreign.err
    assert not (tmp_path / "z").exists()
    for result in (taken, unknown, no_alias, foreign):
        assert "Traceback" not in result.err
        assert len(result.err.strip().splitlines()) == 1
