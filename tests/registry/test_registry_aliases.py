"""Registering, aliases, loading by alias, promotion/rollback history and broken artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from defectops.errors import InputError, ModelError, NotFoundError
from defectops.registry.records import CHALLENGER, CHAMPION
from defectops.registry.registry import ModelRegistry, champion_stack
from defectops.registry.runs import TrainingRun, log_training_run
from defectops.registry.tracking import TrackingConfig

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _log(config: TrackingConfig, fitted, threshold: float = 0.5) -> TrainingRun:
    model, frame, _ = fitted
    return log_training_run(
        model,
        features=["la", "ld", "nf"],
        reference=frame,
        params={"C": 1.0},
        metrics={"roc_auc": 0.8},
        dataset_fingerprint="fp-aliases",
        config=config,
        threshold=threshold,
    )


@pytest.fixture
def logged(shared_run: TrainingRun) -> TrainingRun:
    return shared_run


def test_register_alias_load_round_trip(registry: ModelRegistry, model_name: str, tiny_model, logged) -> None:
    model, frame, _ = tiny_model
    version = registry.register(model_name, logged.model_uri, who="trainer", why="nightly training", now=T0)
    assert version.version == 1
    assert version.aliases == [CHALLENGER]
    assert version.run_id == logged.run_id
    assert version.threshold == 0.4
    assert version.dataset_fingerprint == "fp-shared"
    assert version.metrics == {"roc_auc": 0.8}

    loaded = registry.load(model_name, alias=CHALLENGER)
    assert loaded.meta.version == 1
    assert loaded.meta.alias == CHALLENGER
    assert loaded.meta.run_id == logged.run_id
    assert loaded.meta.features == ["la", "ld", "nf"]
    assert loaded.meta.threshold == 0.4
    assert loaded.meta.serialization_format == "skops"
    assert loaded.meta.model_uri == f"models:/{model_name}/1"
    # the loaded estimator is the trained one: identical probabilities, columns picked by name and order
    shuffled = frame[["nf", "la", "ld"]]
    np.testing.assert_allclose(loaded.score(shuffled), model.predict_proba(frame[["la", "ld", "nf"]])[:, 1])
    np.testing.assert_allclose(
        loaded.estimator.predict_proba(frame[["la", "ld", "nf"]]),
        model.predict_proba(frame[["la", "ld", "nf"]]),
    )
    assert registry.load(model_name, version=1).meta.alias is None

    # the reference snapshot of a registered version is reachable for monitoring
    assert registry.load_reference(model_name, alias=CHALLENGER).shape == frame.shape

    # MLflow itself agrees (aliases, not stages)
    client = MlflowClient(
        tracking_uri=registry.config.tracking_uri, registry_uri=registry.config.registry_uri
    )
    assert int(client.get_model_version_by_alias(model_name, CHALLENGER).version) == 1

    # a newer challenger displaces the old one, audited with from/to
    registry.register(model_name, logged.model_uri, who="trainer", why="retrain", now=T0 + timedelta(days=1))
    assert registry.aliases(model_name) == {CHALLENGER: 2}
    events = registry.history(model_name)
    assert [(e.action, e.alias, e.from_version, e.to_version) for e in events] == [
        ("register", CHALLENGER, None, 1),
        ("register", CHALLENGER, 1, 2),
    ]
    assert events[0].who == "trainer"
    assert events[0].why == "nightly training"
    assert events[0].at == T0
    assert events[0].evidence["run_id"] == logged.run_id


def test_promote_and_rollback_follow_the_history(registry: ModelRegistry, model_name: str, logged) -> None:
    for day in range(3):  # three versions of the same artifact are enough to exercise the aliases
        registry.register(
            model_name, logged.model_uri, who="ci", why=f"train {day}", now=T0 + timedelta(days=day)
        )
    t = T0 + timedelta(days=10)

    first = registry.promote(model_name, 1, "alice", "first model passed the floor", {"auc": 0.8}, now=t)
    assert [(e.alias, e.from_version, e.to_version) for e in first] == [(CHAMPION, None, 1)]
    assert registry.aliases(model_name) == {CHAMPION: 1, CHALLENGER: 3}

    second = registry.promote(model_name, 2, "alice", "better on the recent window", None, now=t)
    assert [(e.alias, e.from_version, e.to_version) for e in second] == [(CHAMPION, 1, 2)]
    # promoting the challenger itself also retires its challenger alias (a second audited move)
    third = registry.promote(model_name, 3, "bob", "gate passed", {"gate_run_id": "r3"}, now=t)
    assert [(e.alias, e.action, e.from_version, e.to_version) for e in third] == [
        (CHAMPION, "promote", 2, 3),
        (CHALLENGER, "promote", 3, None),
    ]
    assert registry.aliases(model_name) == {CHAMPION: 3}
    assert third[0].evidence == {"gate_run_id": "r3", "forced": False}

    back = registry.rollback(model_name, "pager", "v3 degraded in production", now=t + timedelta(hours=1))
    assert (back.action, back.from_version, back.to_version) == ("rollback", 3, 2)
    assert registry.alias_version(model_name, CHAMPION) == 2
    # a second rollback goes further back (1), never forth again to 3
    again = registry.rollback(model_name, "pager", "v2 too", now=t + timedelta(hours=2))
    assert (again.from_version, again.to_version) == (3 - 1, 1)
    with pytest.raises(ModelError, match="no earlier champion"):
        registry.rollback(model_name, "pager", "nothing left", now=t + timedelta(hours=3))

    statuses = {v.version: v.status for v in registry.list_versions(model_name)}
    assert statuses == {1: "champion", 2: "rolled_back", 3: "rolled_back"}

    # the full champion history, oldest first, replays to the current state
    champion_events = registry.history(model_name, alias=CHAMPION)
    assert [(e.action, e.from_version, e.to_version, e.who) for e in champion_events] == [
        ("promote", None, 1, "alice"),
        ("promote", 1, 2, "alice"),
        ("promote", 2, 3, "bob"),
        ("rollback", 3, 2, "pager"),
        ("rollback", 2, 1, "pager"),
    ]
    assert champion_stack(champion_events) == [1]

    # a re-promotion pushes again, so the next rollback returns to 1
    registry.promote(model_name, 3, "alice", "fixed upstream", None, now=t + timedelta(days=1))
    assert registry.rollback(model_name, "pager", "again", now=t + timedelta(days=2)).to_version == 1


def test_rollback_refuses_when_the_alias_was_moved_outside(
    registry: ModelRegistry, model_name: str, logged
) -> None:
    for day in range(2):
        registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0 + timedelta(days=day))
    registry.promote(model_name, 1, "alice", "first", None, now=T0)
    registry.promote(model_name, 2, "alice", "second", None, now=T0)
    client = MlflowClient(
        tracking_uri=registry.config.tracking_uri, registry_uri=registry.config.registry_uri
    )
    client.set_registered_model_alias(model_name, CHAMPION, "1")  # someone used the MLflow UI
    with pytest.raises(ModelError, match="moved outside defectops"):
        registry.rollback(model_name, "pager", "unsure", now=T0)
    assert registry.alias_version(model_name, CHAMPION) == 1  # nothing changed


def test_promotion_guards(registry: ModelRegistry, model_name: str, logged) -> None:
    registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0)
    with pytest.raises(NotFoundError, match="has no version 7"):
        registry.promote(model_name, 7, "alice", "typo", None, now=T0)
    with pytest.raises(NotFoundError, match="unknown model"):
        registry.promote(model_name + "-nope", 1, "alice", "typo", None, now=T0)
    with pytest.raises(InputError, match="needs 'why'"):
        registry.promote(model_name, 1, "alice", "  ", None, now=T0)
    with pytest.raises(InputError, match="timezone-aware"):
        registry.promote(model_name, 1, "alice", "naive clock", None, now=datetime(2026, 1, 1))
    assert registry.history(model_name, alias=CHAMPION) == []  # refused moves leave no trace
    with pytest.raises(ModelError, match="no champion to roll back"):
        registry.rollback(model_name, "pager", "nothing yet", now=T0)

    # a version whose gate failed needs force, and the override is recorded
    client = MlflowClient(
        tracking_uri=registry.config.tracking_uri, registry_uri=registry.config.registry_uri
    )
    client.set_model_version_tag(model_name, "1", "defectops.gate", "failed")
    with pytest.raises(ModelError, match="failed its promotion gate"):
        registry.promote(model_name, 1, "alice", "I know better", None, now=T0)
    events = registry.promote(model_name, 1, "alice", "I know better", None, now=T0, force=True)
    assert events[0].evidence["forced"] is True
    with pytest.raises(InputError, match="already the champion"):
        registry.promote(model_name, 1, "alice", "twice", None, now=T0)
    with pytest.raises(InputError, match="is the champion"):
        registry.archive(model_name, 1, "alice", "cannot archive the server", now=T0)


def test_lookup_errors(registry: ModelRegistry, model_name: str, logged) -> None:
    with pytest.raises(NotFoundError, match="unknown model"):
        registry.load(model_name)
    with pytest.raises(InputError, match="invalid model name"):
        registry.load("bad name'; drop")
    registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0)
    with pytest.raises(NotFoundError, match="has no 'champion' alias"):
        registry.load(model_name)
    with pytest.raises(NotFoundError, match="has no version 2"):
        registry.load(model_name, version=2)


def test_archive_drops_the_challenger(registry: ModelRegistry, model_name: str, logged) -> None:
    registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0)
    event = registry.archive(model_name, 1, "heal", "gate failed", {"gate_run_id": "g1"}, now=T0)
    assert (event.alias, event.action, event.from_version, event.to_version) == (
        CHALLENGER,
        "archive",
        1,
        None,
    )
    assert event.evidence == {"gate_run_id": "g1", "archived_version": 1}
    assert registry.aliases(model_name) == {}
    assert registry.get_version(model_name, 1).status == "archived"


def test_list_models_shows_aliases(registry: ModelRegistry, model_name: str, logged) -> None:
    registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0)
    registry.register(model_name, logged.model_uri, who="ci", why="train", now=T0)
    registry.promote(model_name, 1, "alice", "first", None, now=T0)
    mine = [m for m in registry.list_models() if m.name == model_name]
    assert len(mine) == 1
    assert mine[0].aliases == {CHAMPION: 1, CHALLENGER: 2}
    assert (mine[0].latest_version, mine[0].versions) == (2, 2)
    assert [(v.version, v.aliases) for v in registry.list_versions(model_name)] == [
        (2, [CHALLENGER]),
        (1, [CHAMPION]),
    ]


def test_broken_artifact_raises_model_error(
    registry: ModelRegistry, model_name: str, tracking_config: TrackingConfig, tiny_model
) -> None:
    run = _log(tracking_config, tiny_model)  # its own artifact: this test damages it
    registry.register(model_name, run.model_uri, who="ci", why="train", now=T0)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=run.model_uri))
    weights = local / "model.skops"
    assert weights.is_file()  # the embedded store hands out the stored file itself
    weights.write_bytes(b"this is not a skops archive")
    with pytest.raises(ModelError, match=r"cannot be loaded \(BadZipFile"):
        registry.load(model_name, alias=CHALLENGER)
    weights.unlink()
    with pytest.raises(ModelError, match="cannot be loaded"):
        registry.load(model_name, alias=CHALLENGER)
    (local / "MLmodel").unlink()
    with pytest.raises(ModelError, match="cannot be loaded"):
        registry.load(model_name, alias=CHALLENGER)
