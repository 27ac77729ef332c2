"""``defectops label`` as a command: JSON output, human output, options, and stored Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from defectops.cli.label import label
from defectops.errors import InputError
from gitrepo import RepoBuilder


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("label")(label)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "label" a subcommand, as in the real CLI
        return

    return app


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    builder = RepoBuilder.create(tmp_path / "r")
    builder.commit("Add parser", {"p.py": "a = 1\nb = 1\n"})
    bug = builder.commit("Tune b", {"p.py": "a = 1\nb = 2\n"}, days=1)
    builder.commit("Handle empty input (#4)", {"p.py": "a = 1\nb = 1\n"}, days=1)
    builder.bug = bug  # type: ignore[attr-defined]
    return builder


def test_label_json(repo: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    issues = tmp_path / "issues.csv"
    issues.write_text("id,labels,created_at\n4,bug,2020-01-01T12:00:00Z\n")
    runner = CliRunner()
    args = ["label", "--repo", str(repo.path), "--issues", str(issues), "--now", "2020-06-01", "--json"]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # The fix references bug #4, reported 2020-01-01 12:00, after `Add parser` (00:00) but before `Tune b`
    # (2020-01-02), so the issue-date filter drops the only candidate: the fix is unlinkable.
    assert summary["new_fixes"] == 1
    assert summary["new_unlinkable"] == {"issue-date": 1}
    # 2020-06-01 is more than 90 days after every commit: all three are clean.
    assert summary["labels"] == {"defect": 0, "clean": 3, "unknown": 0}
    assert summary["issues"]["count"] == 1
    labels = pd.read_parquet(summary["labels_path"])
    assert len(labels) == 3

    # Without the issue list the message alone decides ("Handle empty input" has no fix keyword) ...
    plain = runner.invoke(_app(), ["label", "--repo", str(repo.path), "--now", "2020-06-01", "--json"])
    assert json.loads(plain.stdout)["new_fixes"] == 0
    # ... and with B-SZZ and a short wait the numbers follow the options.
    short = runner.invoke(
        _app(),
        [
            "label",
            "--repo",
            str(repo.path),
            "--variant",
            "b",
            "--waiting-days",
            "0",
            "--now",
            "2020-01-02",
            "--json",
        ],
    )
    assert json.loads(short.stdout)["variant"] == "b"
    assert json.loads(short.stdout)["waiting_days"] == 0


def test_label_human_output(repo: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    result = CliRunner().invoke(_app(), ["label", "--repo", str(repo.path), "--now", "2020-06-01", "-q"])
    assert result.exit_code == 0, result.output
    assert "AG-SZZ" in result.stdout
    assert "labels" in result.stdout


def test_label_bad_options(repo: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    runner = CliRunner()
    bad_variant = runner.invoke(_app(), ["label", "--repo", str(repo.path), "--variant", "x"])
    assert isinstance(bad_variant.exception, InputError)
    bad_now = runner.invoke(_app(), ["label", "--repo", str(repo.path), "--now", "soon"])
    assert isinstance(bad_now.exception, InputError)
    missing = runner.invoke(_app(), ["label", "--repo", str(repo.path), "--issues", str(tmp_path / "no.csv")])
    assert isinstance(missing.exception, InputError)
