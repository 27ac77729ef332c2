"""``defectops train`` / ``defectops evaluate`` command functions, run through a Typer app as the CLI will."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from defectops.cli.train import evaluate, train
from defectops.errors import InputError
from defectops.training.metrics import METRIC_KEYS
from defectops.training.models import load_model


@pytest.fixture
def app() -> typer.Typer:
    application = typer.Typer()
    application.command("train")(train)
    application.command("evaluate")(evaluate)
    return application


@pytest.fixture
def csv(table: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "changes.csv"
    table.drop(columns=["message", "paths"]).assign(
        time=table["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ).to_csv(path, index=False)
    return path


def test_train_json_saves_a_loadable_model(app: typer.Typer, csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(csv),
            "--model",
            "logreg",
            "--budget-seconds",
            "0",
            "--gap-days",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(METRIC_KEYS) <= set(document)
    assert document["counts"]["n"] == 120
    assert document["model"] == "logreg"
    assert document["split"]["gap"] == "1 days"
    model = load_model(out)
    assert model.features_ == document["features"]
    assert json.loads((out / "training.json").read_text())["model_dir"] == str(out)


def test_train_human_output(app: typer.Typer, csv: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(csv),
            "--model",
            "lightgbm",
            "--budget-seconds",
            "0",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.stdout
    assert "model saved to" in result.stdout


def test_evaluate_json_over_rolling_folds(app: typer.Typer, csv: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(csv), "--split", "rolling", "--folds", "2", "--model", "logreg", "--json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["split"] == "rolling"
    assert document["n_folds"] == 2
    assert set(METRIC_KEYS) <= set(document)
    assert {"n", "n_defective", "n_clean", "tp", "fp", "tn", "fn"} <= set(document["counts"])


def test_random_split_must_be_named_and_warns(app: typer.Typer, csv: Path) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", "--data", str(csv), "--split", "random", "--model", "logreg"]
    )
    assert result.exit_code == 0, result.output
    assert "leak" in result.stdout


def test_bad_options_raise_input_errors(csv: Path) -> None:
    with pytest.raises(InputError, match="--split"):
        evaluate(data=csv, split="shuffle")
    with pytest.raises(InputError, match="--model"):
        train(data=csv, model="xgboost")
    with pytest.raises(InputError, match="text model needs"):
        train(data=csv, model="text", budget_seconds=0)
