"""The ``models list|promote|rollback`` command functions, driven through a Typer app like the CLI's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from defectops.cli.models import models_list, models_promote, models_rollback
from defectops.errors import InputError, ModelError, NotFoundError
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun
from defectops.registry.tracking import TrackingConfig

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("list")(models_list)
    app.command("promote")(models_promote)
    app.command("rollback")(models_rollback)
    return app


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tracking_config: TrackingConfig) -> CliRunner:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tracking_config.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("DEFECTOPS_AUDIT_DB_URL", raising=False)
    return CliRunner()


def test_list_on_an_empty_workspace_creates_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "fresh"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    human = runner.invoke(_app(), ["list"])
    assert human.exit_code == 0, human.output
    assert "No models registered yet" in human.output
    as_json = runner.invoke(_app(), ["list", "--json"])
    assert json.loads(as_json.stdout) == {"models": []}
    missing = runner.invoke(_app(), ["rollback", "jit", "--why", "x"])
    assert isinstance(missing.exception, NotFoundError)
    assert not (tmp_path / "fresh").exists()  # no database was created (and migrated) just to answer


def test_promote_list_rollback(
    cli: CliRunner, registry: ModelRegistry, model_name: str, shared_run: TrainingRun
) -> None:
    for _ in range(2):
        registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    app = _app()

    promoted = cli.invoke(
        app, ["promote", model_name, "1", "--why", "first model", "--who", "alice", "--json"]
    )
    assert promoted.exit_code == 0, promoted.output
    document = json.loads(promoted.stdout)
    assert (document["champion"], document["previous_champion"]) == (1, None)
    assert document["events"][0]["who"] == "alice"
    assert document["events"][0]["evidence"] == {"source": "cli", "previous_champion": None, "forced": False}

    human = cli.invoke(app, ["promote", model_name, "2", "--why", "better", "--who", "bob"])
    assert human.exit_code == 0, human.output
    assert f"{model_name}: champion is now v2 (was v1)." in human.output

    listed = json.loads(cli.invoke(app, ["list", model_name, "--json", "--history"]).stdout)
    assert listed["aliases"] == {"champion": 2}
    assert [(v["version"], v["aliases"], v["status"]) for v in listed["versions"]] == [
        (2, ["champion"], "champion"),
        (1, [], "retired"),
    ]
    assert [(e["alias"], e["action"], e["to_version"]) for e in listed["history"]] == [
        ("challenger", "register", 1),
        ("challenger", "register", 2),
        ("champion", "promote", 1),
        ("champion", "promote", 2),
        ("challenger", "promote", None),
    ]
    overview = json.loads(cli.invoke(app, ["list", "--json"]).stdout)
    (mine,) = [m for m in overview["models"] if m["name"] == model_name]
    assert mine["aliases"] == {"champion": 2}

    table = cli.invoke(app, ["list", model_name, "--history"])
    assert table.exit_code == 0, table.output
    assert "Alias history" in table.output
    assert "better" in table.output

    back = cli.invoke(app, ["rollback", model_name, "--why", "v2 degraded", "--who", "pager", "--json"])
    assert back.exit_code == 0, back.output
    assert {k: v for k, v in json.loads(back.stdout).items() if k != "event"} == {
        "name": model_name,
        "champion": 1,
        "rolled_back": 2,
    }
    assert registry.alias_version(model_name, "champion") == 1


def test_bad_input_is_one_error(cli: CliRunner, registry: ModelRegistry, model_name: str, shared_run) -> None:
    registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    app = _app()
    unknown_model = cli.invoke(app, ["promote", model_name + "-nope", "1", "--why", "x"])
    assert isinstance(unknown_model.exception, NotFoundError)
    assert str(unknown_model.exception) == f"unknown model '{model_name}-nope'"
    unknown_version = cli.invoke(app, ["promote", model_name, "9", "--why", "x"])
    assert isinstance(unknown_version.exception, NotFoundError)
    assert str(unknown_version.exception) == f"model '{model_name}' has no version 9"
    bad_name = cli.invoke(app, ["list", "no spaces please"])
    assert isinstance(bad_name.exception, InputError)
    # usage errors are Typer's: exit code 2, nothing promoted
    assert cli.invoke(app, ["promote", model_name, "one", "--why", "x"]).exit_code == 2
    assert cli.invoke(app, ["promote", model_name, "1"]).exit_code == 2  # --why is required
    assert registry.aliases(model_name) == {"challenger": 1}


def test_an_archived_version_is_promoted_only_with_force_and_the_override_is_audited(
    cli: CliRunner, registry: ModelRegistry, model_name: str, shared_run: TrainingRun
) -> None:
    for _ in range(2):
        registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    registry.promote(model_name, 1, "ci", "first model", now=T0)
    registry.archive(model_name, 2, "gate", "gate roc_auc below the floor", now=T0)
    app = _app()
    refused = cli.invoke(app, ["promote", model_name, "2", "--why", "looks fine", "--who", "alice"])
    assert isinstance(refused.exception, ModelError)
    # who archived it and why, from the audit history (not a guess: run archives a version whose gate could
    # not run, too few new labelled commits, and the refusal said "refused by its promotion gate")
    assert str(refused.exception) == (
        f"{model_name} v2 was archived by gate (gate roc_auc below the floor); "
        "promote with force (and a reason) to override"
    )
    assert registry.alias_version(model_name, "champion") == 1  # nothing moved
    forced = cli.invoke(
        app, ["promote", model_name, "2", "--why", "hotfix model", "--who", "alice", "--force", "--json"]
    )
    assert forced.exit_code == 0, forced.output
    (event,) = json.loads(forced.stdout)["events"]
    assert (event["who"], event["why"], event["to_version"]) == ("alice", "hotfix model", 2)
    assert event["evidence"]["forced"] is True
    assert event["evidence"]["overridden"].startswith("was archived")
    assert event["at"]  # when
