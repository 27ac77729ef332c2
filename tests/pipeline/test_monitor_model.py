"""``defectops monitor`` without files: a registered model against the workspace's prediction log.

A seeded history (tests/heal_world.py) trains the first champion on day 240 the way ``defectops run`` does;
the next 30 days of changes are logged as the service logs them (half with ``fix`` as an old-style boolean).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from defectops.config import HealSettings, MonitoringSettings
from defectops.data import FEATURES
from defectops.errors import InputError
from defectops.pipeline import monitor_model, monitored_version
from defectops.pipeline.heal import FrameSource
from defectops.predlog import PredictionRecord
from defectops.training import risk_bands_of
from heal_world import (
    WAITING_DAYS,
    Stack,
    WorldSpec,
    bootstrap_champion,
    commits_frame,
    day,
    generate,
    heal_tracking,
    labels_frame,
    mlflow_environment_restored,
    stack,
)

__all__ = ["heal_tracking", "mlflow_environment_restored", "stack"]  # fixtures pytest finds here


def _log_days(stack: Stack, world: pd.DataFrame, version: int, first: int, last: int) -> int:
    model = stack.registry.load(stack.name, version=version)
    rows = world[(world["day"] >= first) & (world["day"] < last)].reset_index(drop=True)
    scores = model.score(rows)
    records = []
    for i, row in rows.iterrows():
        inputs: dict[str, object] = {name: float(row[name]) for name in FEATURES}
        if i % 2:  # as /v1/commits/score logged it before the feature contract
            inputs["fix"] = bool(row["fix"])
        inputs["commit_time"] = row["time"].isoformat()
        score = float(scores[i])
        records.append(
            PredictionRecord(
                prediction_id=f"018f0000-0000-7000-8000-{i:012d}",
                created_at=row["time"].to_pydatetime(),
                model_name=stack.name,
                model_version=str(version),
                served=True,
                inputs=inputs,
                score=score,
                threshold=model.meta.threshold,
                risk_label=int(score >= model.meta.threshold),
                risk_band="low",
            )
        )
    return stack.log.record(records)


def test_a_quiet_period_monitored_from_the_workspace_raises_no_alarm(stack: Stack) -> None:
    world = generate(WorldSpec(seed=3, days=300, per_day=4, drift_day=None))
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(300)))
    version = bootstrap_champion(stack.registry, stack.name, source, day(240))
    assert monitored_version(stack.registry, stack.name, None) == version
    logged = _log_days(stack, world, version, 240, 270)
    assert logged == 120  # 30 days x 4 changes
    heal = HealSettings()
    watched = monitor_model(
        registry=stack.registry,
        log=stack.log,
        model_name=stack.name,
        version=version,
        since=day(240),
        now=day(271),
        settings=MonitoringSettings(),
        heal=heal,
        waiting_days=WAITING_DAYS,
    )
    result = watched.result
    assert result.n_window == 120
    # the period in heal's words: day 240 is 2024-08-28 (2024 is a leap year), day 271 2024-09-28; the
    # champion was promoted on day 240 (bootstrap_champion's gate), inside the period, so it is named
    assert watched.period("--since 31d") == (
        f"120 served predictions of v{version} from 2024-08-28 00:00 to 2024-09-28 00:00 UTC "
        f"(--since 31d; v{version} champion from 2024-08-28 00:00 UTC on)"
    )
    # the reference: the 90 days before the 30-day wait preceding training (day 240): days 120..210
    span = watched.reference
    assert span.start is not None
    assert span.end is not None
    assert (span.start - day(120)).total_seconds() > 0
    assert span.end <= day(210)
    assert span.rows == 360  # 90 days x 4 changes
    assert not result.alarm, result.alarm_reasons
    # the snapshot has no scores: the champion scores the reference, so the score checks and CBPE run too
    assert result.prediction is not None
    assert not result.prediction.drift_detected
    assert result.proxies_reference is not None
    assert not any("no model scores on the reference" in note for note in result.notes)
    assert "fix" not in result.drifted_features  # bool and float flags are one type
    assert result.realized.n_matured == 0
    # high risk as the service says it: the champion's high band (twice its base rate), not a fixed 0.8
    bands = risk_bands_of(stack.registry.load(stack.name, version=version).estimator)
    assert bands is not None
    assert result.proxies_window.high_risk_threshold == pytest.approx(bands.high)
    assert result.realized.skipped_reason == "no labels arrived in the window"
    with pytest.raises(InputError, match="no served predictions"):
        monitor_model(
            registry=stack.registry,
            log=stack.log,
            model_name=stack.name,
            version=version,
            since=day(280),
            now=day(290),
            settings=MonitoringSettings(),
            waiting_days=WAITING_DAYS,
        )


def test_the_traffic_rate_is_over_the_time_the_champion_served(stack: Stack) -> None:
    # Found on flask: a champion promoted minutes before, monitored with --since 7d, read "10 predictions in
    # 7 days ... about 70 days: monitor a longer window with --since" while heal said "about 1 day" of the same
    # predictions; a longer --since adds none of them.
    world = generate(WorldSpec(seed=3, days=300, per_day=4, drift_day=None))
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(300)))
    version = bootstrap_champion(stack.registry, stack.name, source, day(240))
    assert _log_days(stack, world, version, 240, 242) == 8
    watched = monitor_model(
        registry=stack.registry,
        log=stack.log,
        model_name=stack.name,
        version=version,
        since=day(200),
        now=day(242),
        settings=MonitoringSettings(),
        waiting_days=WAITING_DAYS,
    )
    assert watched.result.n_window == 8
    assert watched.traffic_note(100) == (
        "at this rate (8 predictions in 2 days) a window of 100 predictions spans about 25 days; "
        f"v{version} is champion only since 2024-08-28 00:00 UTC, so a longer --since adds none of its "
        "predictions"
    )
    # a window inside the champion's time: the rate over the window, and a longer --since helps
    inside = monitor_model(
        registry=stack.registry,
        log=stack.log,
        model_name=stack.name,
        version=version,
        since=day(241),
        now=day(242),
        settings=MonitoringSettings(),
        waiting_days=WAITING_DAYS,
    )
    assert inside.traffic_note(100) == (
        f"at this rate ({inside.result.n_window} predictions in 1 day) a window of 100 predictions spans "
        f"about {math.ceil(100 / inside.result.n_window)} days: monitor a longer window with --since"
    )
    assert inside.traffic_note(inside.result.n_window) is None


def test_heal_says_the_window_is_cut_by_the_promotion(stack: Stack) -> None:
    # the same predictions in heal's monitor step: the rate over the 2 days the champion served, and no advice
    # to raise DEFECTOPS_HEAL_WINDOW_DAYS (it would add none of them; the window grows by itself)
    world = generate(WorldSpec(seed=3, days=300, per_day=4, drift_day=None))
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(300)))
    version = bootstrap_champion(stack.registry, stack.name, source, day(240))
    _log_days(stack, world, version, 240, 242)
    report = stack.healer(source, HealSettings(budget_seconds=0.0, min_new_labels=10**6)).cycle(day(242))
    monitored = report.record("monitor")
    assert monitored is not None
    assert monitored.outcome == "skipped"
    assert monitored.reason.endswith(
        "at this rate (8 predictions in 2 days) a window of 100 predictions spans about 25 days "
        f"(v{version} is champion only since 2024-08-28 00:00 UTC)"
    ), monitored.reason


def test_the_command_says_what_it_monitored_in_json_and_html(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Found on flask: `defectops monitor --json` and the HTML report of the workspace's model named neither the
    # model, nor the version, nor the period; only the printed summary did.
    import importlib

    command = importlib.import_module("defectops.cli.monitor")  # the module (the package exports a function)

    world = generate(WorldSpec(seed=3, days=300, per_day=4, drift_day=None))
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(300)))
    version = bootstrap_champion(stack.registry, stack.name, source, day(240))
    _log_days(stack, world, version, 240, 242)

    def watched(*_args: object) -> object:
        return monitor_model(
            registry=stack.registry,
            log=stack.log,
            model_name=stack.name,
            version=version,
            since=day(200),
            now=day(242),
            settings=MonitoringSettings(),
            waiting_days=WAITING_DAYS,
        )

    monkeypatch.setattr(command, "_monitor_model", watched)
    for name in ("WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"DEFECTOPS_ALERT_{name}", raising=False)
    app = typer.Typer()
    app.command("monitor")(command.monitor)

    @app.callback()
    def _root() -> None:
        """Keep 'monitor' a subcommand."""

    html = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["monitor", "--json", "--html", str(html)])
    assert result.exit_code == 0, result.output
    monitored = json.loads(result.output)["monitored"]
    assert (monitored["model_name"], monitored["version"]) == (stack.name, version)
    assert monitored["since"] == day(200).isoformat()
    assert monitored["champion_from"] == day(240).isoformat()
    assert monitored["context"][0].startswith(f"model {stack.name}: 8 served predictions of v{version}")
    assert monitored["context"][-1].endswith("so a longer --since adds none of its predictions")
    page = html.read_text(encoding="utf-8")
    assert f"<li>model {stack.name}: 8 served predictions of v{version}" in page


def test_realized_performance_leaves_out_labels_the_version_learnt(stack: Stack) -> None:
    # A window that starts before the version was trained (--since 6m) holds the labels that arrived then, and
    # a request for an older commit (a reviewer scoring last month's commits) is joined to one of them: the
    # version trained on it, so it is no evidence of how the version does live.
    world = generate(WorldSpec(seed=3, days=300, per_day=4, drift_day=None))
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(300)))
    version = bootstrap_champion(stack.registry, stack.name, source, day(240))
    stack.serve_learnt_and_new(version)  # 30 labels dated day 100, 10 dated day 265
    watched = monitor_model(
        registry=stack.registry,
        log=stack.log,
        model_name=stack.name,
        version=version,
        since=day(90),
        now=day(271),
        settings=MonitoringSettings(label_horizon_days=365),
        waiting_days=WAITING_DAYS,
    )
    assert watched.result.realized.n_matured == 10
    assert watched.known_when_trained == 30
    assert watched.learnt_note() == (
        "realized performance leaves out 30 labels that arrived in the period but were known when "
        f"v{version} was trained: its training rows (requests for older commits)"
    )
