"""The ``monitor`` command function, run through Typer as the CLI will register it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from defectops.cli.monitor import monitor
from defectops.errors import InputError


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    for name in ("WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"DEFECTOPS_ALERT_{name}", raising=False)
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    application = typer.Typer()
    application.command("monitor")(monitor)

    @application.callback()
    def _root() -> None:
        """Keep 'monitor' a subcommand, as in the real CLI."""

    return application


def _write(path: Path, n: int, seed: int, shift: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    score = 1 / (1 + np.exp(-(-1.0 + 0.8 * x)))
    frame = pd.DataFrame(
        {
            "x": x,
            "y": 0.5 * x + rng.normal(size=n),
            "team": rng.choice(["core", "web"], size=n),
            "score": score,
            "label": rng.binomial(1, score),
            "label_time": pd.Timestamp("2020-01-01", tz="UTC"),
            "churn": rng.integers(1, 100, n),
        }
    )
    frame.to_parquet(path)
    return path


def _run(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, ["monitor", *args])


def test_monitor_prints_a_summary_and_exits_zero(app: typer.Typer, tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.parquet", 2000, 1)
    win = _write(tmp_path / "win.parquet", 500, 2, shift=1.0)
    once = _run(app, "--reference", str(ref), "--window", str(win))
    assert once.exit_code == 0, once.output
    assert once.output.startswith("OK, with drift to look at (no alarm)")  # one check: not sustained
    before = _write(tmp_path / "before.parquet", 500, 5, shift=1.0)
    result = _run(app, "--reference", str(ref), "--window", str(win), "--previous-window", str(before))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ALARM")  # the score moved with x in both checks: an alarm
    assert "alarm: the score distribution drifted (ks" in result.output
    assert "(drift in 2 consecutive checks)" in result.output
    assert "Drift by feature" in result.output
    assert "x: ks statistic" in result.output
    assert "Performance" in result.output
    assert not (tmp_path / "ws").exists()  # no alert channel configured: nothing written


def test_monitor_json_and_html(app: typer.Typer, tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.parquet", 2000, 1)
    win = _write(tmp_path / "win.parquet", 500, 3)
    html = tmp_path / "report" / "monitor.html"
    result = _run(app, "--reference", str(ref), "--window", str(win), "--json", "--html", str(html))
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["state"] == "ok"
    assert [f["feature"] for f in document["features"]] == ["x", "y", "team"]
    assert document["realized"]["n_matured"] == 500  # label_time 2020 has matured
    assert document["html_report"] == str(html)
    assert document["alerts"] is None
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_monitor_alerts_a_webhook_once_per_change(
    app: typer.Typer, tmp_path: Path, webhook_server: Any
) -> None:
    ref = _write(tmp_path / "ref.parquet", 2000, 1)
    drifted = _write(tmp_path / "drifted.parquet", 500, 4, shift=1.0)
    args = ["--reference", str(ref), "--window", str(drifted), "--previous-window", str(drifted)]
    args += ["--webhook", webhook_server.url]
    first = _run(app, *args)
    assert first.exit_code == 0, first.output
    assert "alert ok->drift via webhook" in first.output
    assert "secret-token" not in first.output
    second = _run(app, *args, "--json")
    assert json.loads(second.output)["alerts"]["outcomes"] == []
    assert len(webhook_server.requests) == 1
    state = tmp_path / "ws" / "monitoring" / "alert-state.json"  # the workspace default
    assert json.loads(state.read_text())["channels"] == {"webhook": "drift"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "reference file not found"),
        ("not-parquet", "not readable Parquet"),
        ("no-score", "the window has no 'score' column"),
        ("threshold", "decision threshold"),
    ],
)
def test_bad_input_is_one_input_error(app: typer.Typer, tmp_path: Path, setup: str, message: str) -> None:
    ref = _write(tmp_path / "ref.parquet", 300, 1)
    win = _write(tmp_path / "win.parquet", 300, 2)
    extra: list[str] = []
    if setup == "missing":
        ref = tmp_path / "nope.parquet"
    elif setup == "not-parquet":
        win.write_text("just text", encoding="utf-8")
    elif setup == "no-score":
        pd.read_parquet(win).drop(columns=["score"]).to_parquet(win)
    else:
        extra = ["--threshold", "1.5"]
    result = _run(app, "--reference", str(ref), "--window", str(win), *extra)
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


def _team(path: Path, n: int, seed: int, newcomers: float) -> Path:
    """Changes whose author experience is below 10 for a share ``newcomers`` of them (else 40 to 140)."""
    rng = np.random.default_rng(seed)
    new = rng.random(n) < newcomers
    frame = pd.DataFrame(
        {
            "exp": np.where(new, rng.integers(0, 10, n), rng.integers(40, 140, n)).astype(float),
            **{name: rng.integers(1, 200, n).astype(float) for name in ("la", "ld", "nf", "ns")},
            "score": rng.beta(2, 8, n),
        }
    )
    frame.to_parquet(path)
    return path


def test_monitor_shows_a_new_team_as_diagnosis_and_alarms_when_asked(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _team(tmp_path / "ref.parquet", 2000, 1, 0.05)
    win = _team(tmp_path / "win.parquet", 300, 2, 0.40)
    before = _team(tmp_path / "before.parquet", 300, 3, 0.40)
    args = ("--reference", str(ref), "--window", str(win), "--previous-window", str(before))
    shown = _run(app, *args)
    assert shown.exit_code == 0, shown.output
    assert "ALARM" not in shown.output
    assert "New team of authors: " in shown.output
    assert "new team: in 2 consecutive checks (diagnosis: newcomer_alarm is off)" in shown.output
    monkeypatch.setenv("DEFECTOPS_MONITOR_NEWCOMER_ALARM", "true")
    alarmed = _run(app, *args)
    assert alarmed.exit_code == 0, alarmed.output
    assert alarmed.output.startswith("ALARM")
    assert "alarm: a new team? " in alarmed.output
    assert "(in 2 consecutive checks)" in alarmed.output


def test_the_threshold_is_printed_to_three_places_like_the_rates_beside_it(
    app: typer.Typer, tmp_path: Path
) -> None:
    """On requests the line read 'Positive rate 0.083 at threshold 0.16158802937780625, high-risk share
    0.050': the registered threshold went out with all its digits."""
    ref = _write(tmp_path / "ref.parquet", 400, 1)
    win = _write(tmp_path / "win.parquet", 200, 2)
    result = _run(app, "--reference", str(ref), "--window", str(win), "--threshold", "0.16158802937780625")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("Positive rate"))
    assert " at threshold 0.162, high-risk share " in line


def test_a_metric_not_judged_on_one_label_says_label() -> None:
    # flask's first monitor after one feedback read "n/a, only 1 labels"
    from defectops.cli.monitor import _not_judged

    assert _not_judged(1, "not enough labels (n=1, 30 needed)") == "n/a, only 1 label"
    assert _not_judged(7, "not enough labels (n=7, 30 needed)") == "n/a, only 7 labels"
    assert _not_judged(0, None) == "n/a, no labels"
