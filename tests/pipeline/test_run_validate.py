"""Issue #20 end to end: `defectops run` reports the validation section, `defectops validate` agrees with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from defectops.cli import main
from gitrepo import RepoBuilder


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    main(args)
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("quiet_mlflow")
@pytest.mark.slow
def test_run_reports_validation_and_validate_reproduces_its_window(
    synthetic_repo: RepoBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = str(tmp_path / "ws")
    run = _json(
        [
            "-w",
            ws,
            "run",
            "--repo",
            str(synthetic_repo.path),
            "--budget-seconds",
            "0",
            "--stability",
            "--json",
        ],
        capsys,
    )
    validation = run["validate"]
    intervals = validation["intervals"]
    assert intervals["n"] == run["evaluate"]["test_rows"]
    # The summary line says how many of the held-out commits were defect-inducing: a young repository's
    # "ROC-AUC 1.000" rested on 1 of 71 and read as a perfect model.
    assert run["evaluate"]["test_defective"] == intervals["defective"] > 0
    assert intervals["metrics"]["roc_auc"]["value"] == pytest.approx(run["evaluate"]["roc_auc"])
    assert intervals["metrics"]["f1"]["value"] == pytest.approx(run["evaluate"]["f1"])
    low, high = intervals["metrics"]["roc_auc"]["lower"], intervals["metrics"]["roc_auc"]["upper"]
    assert low <= run["evaluate"]["roc_auc"] <= high
    assert {g["dimension"] for g in validation["groups"]} == {"author", "component", "size"}
    assert len(validation["stability"]["seeds"]) == 5
    assert validation["stability"]["computed"] is True
    page = Path(run["report"]).read_text()
    assert "Validation beyond one number" in page
    assert "<h3>Stability</h3>" in page  # asked for: the tables
    assert "ROC-AUC over seeds" in page
    assert {"quarters", "seeds"} <= set(validation["protocol"])

    # the same protocol (model defaults, seed 0) from the stored datasets: the same held-out window and AUC
    again = _json(["-w", ws, "validate", "--resamples", "200", "--quarters", "2", "--json"], capsys)
    assert again["intervals"]["n"] == intervals["n"]
    assert again["intervals"]["metrics"]["roc_auc"]["value"] == pytest.approx(run["evaluate"]["roc_auc"])
    assert again["intervals"]["resamples"] == 200
    assert len(again["stability"]["quarters"]) <= 2

    # the hybrid model reads changed lines the stored datasets do not keep: validate reads them from --repo
    hybrid = _json(
        [
            *["-w", ws, "validate", "--model", "hybrid", "--repo", str(synthetic_repo.path)],
            *["--resamples", "100", "--quarters", "1", "--json"],
        ],
        capsys,
    )
    assert hybrid["intervals"]["n"] == intervals["n"]
    assert 0.0 <= hybrid["intervals"]["metrics"]["roc_auc"]["value"] <= 1.0


def test_validate_on_an_empty_workspace_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "nothing"), "validate"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no labelled repository in the workspace")
    assert len(err.splitlines()) == 1


def test_validate_refuses_an_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "nothing"), "validate", "--model", "magic"])
    assert exit_info.value.code != 0
    assert "--model 'magic'" in capsys.readouterr().err


def test_validate_of_the_hybrid_model_needs_the_clone_to_read_changed_lines_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "nothing"), "validate", "--model", "hybrid"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err == "error: --model hybrid: give --repo, the clone its changed lines are read from"


def test_the_seed_refit_learns_from_the_features_the_candidate_chose(
    synthetic_repo: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 0 of the held-out fold is the fold itself: the same training part, hyperparameters and inputs.
    The refits were built on the default Kamei metrics whatever the candidate had chosen, so on scrapy
    (27 inputs chosen) `validate` printed ROC-AUC 0.845 at the top and 0.814 for "held-out, seed 0"."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from defectops.data import FEATURES, RICH_FEATURES, read_table, upgrade_labels
    from defectops.training import CandidateOptions, ValidationOptions, train_candidate, validate_candidate

    ws = tmp_path / "ws"
    main(["-w", str(ws), "mine", "--repo", str(synthetic_repo.path)])
    main(["-w", str(ws), "label", "--repo", str(synthetic_repo.path)])
    capsys.readouterr()
    (folder,) = (ws / "datasets").iterdir()
    commits, files = read_table(folder / "commits.parquet"), read_table(folder / "files.parquet")
    labels = upgrade_labels(pd.read_parquet(folder / "labels.parquet"))
    now = datetime(2026, 12, 6, tzinfo=UTC)
    rich = CandidateOptions(budget_seconds=0, features=(*FEATURES, *RICH_FEATURES), select_features=False)
    candidate = train_candidate(commits, labels, files, now=now, options=rich)
    assert set(RICH_FEATURES) <= set(candidate.features)  # more than the default Kamei metrics

    report = validate_candidate(
        candidate, commits, labels, files, now=now, gap=timedelta(days=90), kind="lightgbm",
        options=ValidationOptions(resamples=20, seeds=(0,), quarters=1),
    )  # fmt: skip
    (seed0,) = report.seeds
    assert seed0.roc_auc == pytest.approx(report.intervals.intervals["roc_auc"].value)
    assert seed0.threshold == pytest.approx(report.threshold)
