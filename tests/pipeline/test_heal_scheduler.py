"""``defectops scheduler`` and ``defectops heal`` as commands, and the in-process schedule behind them."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from defectops.cli.heal import heal, scheduler
from defectops.errors import ConfigError, InputError, ModelError, NotFoundError
from defectops.pipeline.scheduler import run_scheduler
from defectops.registry.tracking import TrackingConfig
from heal_world import heal_tracking, mlflow_environment_restored

__all__ = ["heal_tracking", "mlflow_environment_restored"]  # fixtures pytest finds here

FAST = 0.001  # minutes between cycles: 60 ms


def test_cycles_run_at_once_then_on_schedule_until_max_cycles() -> None:
    seen: list[datetime] = []
    results: list[int] = []

    def cycle(now: datetime) -> int:
        seen.append(now)
        return len(seen)

    summary = run_scheduler(cycle, every_minutes=FAST, max_cycles=3, on_result=results.append)
    assert (summary.cycles, summary.failures, summary.stopped_by) == (3, 0, "max_cycles")
    assert results == [1, 2, 3]
    assert seen == sorted(seen)
    assert all(moment.tzinfo is UTC for moment in seen)


def test_a_failing_cycle_is_reported_and_the_schedule_goes_on() -> None:
    errors: list[BaseException] = []
    calls = {"n": 0}

    def cycle(now: datetime) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ModelError("registry unreachable")
        return "ok"

    summary = run_scheduler(cycle, every_minutes=FAST, max_cycles=2, on_error=errors.append)
    assert (summary.cycles, summary.failures) == (2, 1)
    assert [str(e) for e in errors] == ["registry unreachable"]
    assert not summary.all_failed
    assert str(summary.last_error) == "registry unreachable"


def test_a_failure_is_reported_once_by_on_error_else_logged(caplog: pytest.LogCaptureFixture) -> None:
    # Was: logged as well as handed to on_error, so `defectops scheduler` printed every failure twice
    # ("heal cycle failed: ..." from the log, "cycle failed: ..." from the CLI).
    def cycle(now: datetime) -> str:
        raise ModelError("registry unreachable")

    errors: list[BaseException] = []
    with caplog.at_level(logging.ERROR, logger="defectops.scheduler"):
        run_scheduler(cycle, every_minutes=FAST, max_cycles=1, on_error=errors.append)
    assert [str(e) for e in errors] == ["registry unreachable"]
    assert [r.getMessage() for r in caplog.records if r.name == "defectops.scheduler"] == []
    with caplog.at_level(logging.ERROR, logger="defectops.scheduler"):
        run_scheduler(cycle, every_minutes=FAST, max_cycles=1)
    assert [r.getMessage() for r in caplog.records if r.name == "defectops.scheduler"] == [
        "heal cycle failed: ModelError: registry unreachable"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_running_cycle_finish_then_stops(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    finished: list[bool] = []

    def cycle(now: datetime) -> None:
        os.kill(os.getpid(), signum)  # what `docker stop` / Ctrl-C does, in the middle of a cycle
        time.sleep(0.2)  # the cycle is still working when the signal arrives
        finished.append(True)

    assert threading.current_thread() is threading.main_thread()
    summary = run_scheduler(cycle, every_minutes=FAST, max_cycles=50)
    assert finished == [True]  # it completed, and no further cycle started
    assert (summary.cycles, summary.stopped_by) == (1, signum.name)
    assert signal.getsignal(signum) is before  # the previous handler is back


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(InputError, match="every_minutes"):
        run_scheduler(lambda now: None, every_minutes=0)
    with pytest.raises(InputError, match="max_cycles"):
        run_scheduler(lambda now: None, every_minutes=1, max_cycles=0)


# ----------------------------------------------------------------------------------------------------------
# the command functions, registered on a Typer app the way the CLI module registers them


def app() -> typer.Typer:
    application = typer.Typer()
    application.command("heal")(heal)
    application.command("scheduler")(scheduler)
    return application


@pytest.fixture
def environment(heal_tracking: TrackingConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace whose MLflow store is the session's (already migrated)."""
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", heal_tracking.tracking_uri)
    monkeypatch.setenv("DEFECTOPS_MLFLOW_ARTIFACTS", str(heal_tracking.artifact_location))
    return tmp_path / "ws"


def test_heal_once_without_a_champion_is_one_line_before_any_cycle(environment: Path) -> None:
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(app(), ["heal", "--once", "--model-name", "cli-heal-once", *extra])
        assert isinstance(result.exception, NotFoundError)
        assert str(result.exception) == (
            "nothing to heal: 'cli-heal-once' is not registered in this workspace; train it first (defectops run)"
        )
    # no cycle ran: nothing was audited
    assert not (environment / "registry_audit.db").exists()


def test_scheduler_runs_cycles_until_max_cycles(environment: Path) -> None:
    args = [
        "scheduler",
        "--every-minutes",
        str(FAST),
        "--max-cycles",
        "2",
        "--model-name",
        "cli-sched",
        "--json",
    ]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    decoder = json.JSONDecoder()
    text, documents, position = result.stdout, [], 0
    while position < len(text.rstrip()):
        document, end = decoder.raw_decode(text, position)
        documents.append(document)
        position = end + 1
    assert [d["model_name"] for d in documents] == ["cli-sched", "cli-sched"]
    assert documents[0]["cycle_id"] != documents[1]["cycle_id"]


def test_heal_without_a_model_or_repository_needs_a_champion_somewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A workspace of its own (the embedded defaults): the session's shared registry may hold exactly one
    # champion, which heal would then pick, depending on which tests ran before on this worker.
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "empty-ws"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DEFECTOPS_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app(), ["heal", "--once"])  # the autouse fixture restores MLflow's variables
    assert isinstance(result.exception, NotFoundError)
    assert str(result.exception) == (
        "no registered model has a champion yet: run `defectops run --repo PATH`, or give --model-name"
    )


def test_bad_gate_option_is_refused(environment: Path) -> None:
    result = CliRunner().invoke(
        app(), ["heal", "--model-name", "x", "--gate", "sometimes", "--max-cycles", "1"]
    )
    assert isinstance(result.exception, InputError)


def test_heal_with_several_champions_names_its_own_options_not_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """heal reads neither DEFECTOPS_SERVE_MODEL_NAME nor a DEFECTOPS_HEAL_ model name: the hint names the
    options heal has (it named the service's variable, which heal ignores)."""
    from mlflow import MlflowClient

    # A workspace of its own: two more champions in the session's shared registry would change what other
    # tests' heal picks when they name no model.
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "two-ws"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DEFECTOPS_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    config = TrackingConfig.resolve(tmp_path / "two-ws")
    config.ensure_local_dirs()
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)
    for name in ("app-b", "app-a"):
        client.create_registered_model(name)
        version = client.create_model_version(name, source=str(tmp_path / "nowhere"), run_id=None)
        client.set_registered_model_alias(name, "champion", version.version)
    for command in (["heal", "--once"], ["scheduler", "--every-minutes", "1", "--max-cycles", "1"]):
        result = CliRunner().invoke(app(), command)  # the autouse fixture restores MLflow's variables
        assert isinstance(result.exception, ConfigError), result.output
        assert str(result.exception) == (
            "several registered models have a champion (app-a, app-b); choose one with --model-name, or --repo "
            "for that repository's model"
        )


def test_a_bounded_scheduler_run_in_which_every_cycle_failed_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was exit 0 after "2 cycle(s), 2 failed": a cron job or a Kubernetes Job reported success. A real
    # failure: the workspace's MLflow artifact folder is a file, so every cycle fails to start its run.
    workspace = tmp_path / "ws"
    (workspace / "mlflow").mkdir(parents=True)
    (workspace / "mlflow" / "artifacts").write_text("not a folder")
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DEFECTOPS_MLFLOW_ARTIFACTS", raising=False)
    args = ["scheduler", "--every-minutes", str(FAST), "--max-cycles", "2", "--model-name", "cli-sched-fail"]
    result = CliRunner().invoke(app(), args)
    assert "after 2 cycle(s), 2 failed" in result.stderr
    assert result.exit_code not in (0, 1), result.output  # the failure's own code, not success or Click's
