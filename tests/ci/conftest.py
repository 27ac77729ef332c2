"""Fixtures for the CI tests: a small real repository, a tiny real model, and the commands in a local Typer app.

The model is a real LogisticJIT fitted on a seeded synthetic table of three features (``la``, ``ld``, ``nf``),
so that the expected probability of each commit follows from its hand-counted line and file numbers alone.
The commands run in a local Typer app whose error handling copies ``defectops.cli.main`` (one line on stderr,
the error's exit code), so these tests do not depend on the lead registering the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer

from defectops.cli import usage_error_message
from defectops.cli.ci import models_export, predict
from defectops.errors import DefectOpsError
from defectops.training.models import JITModel, load_model, make_model
from gitrepo import BOB, RepoBuilder, lines

FEATURES = ("la", "ld", "nf")


@pytest.fixture(autouse=True)
def ci_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace per test and none of the variables a CI runner or developer machine might set."""
    workspace = tmp_path / "ws"
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(workspace))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in (
        "GITHUB_STEP_SUMMARY",
        "DEFECTOPS_INFORMATION_URI",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "DEFECTOPS_S3_ENDPOINT_URL",
        "DEFECTOPS_MLFLOW_EXPERIMENT",
        "DEFECTOPS_AUDIT_DB_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    # the commands switch MLflow's progress bars off with os.environ.setdefault; set-then-delete makes
    # monkeypatch restore the variable's original state afterwards, whatever the command did
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "")
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    return workspace


def training_table(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Defects become likely above roughly e^5 = 148 added lines (log-uniform sizes, noisy boundary)."""
    rng = np.random.default_rng(seed)
    la = np.floor(np.exp(rng.uniform(0, 7, rows)))
    frame = pd.DataFrame(
        {
            "la": la,
            "ld": np.floor(la * rng.uniform(0, 0.5, rows)),
            "nf": rng.integers(1, 10, rows).astype(float),
        }
    )
    y = (np.log(la) + rng.normal(0, 0.7, rows) > 5).astype(int)
    return frame, y


@pytest.fixture(scope="session")
def training_data() -> tuple[pd.DataFrame, np.ndarray]:
    return training_table()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fitted LogisticJIT saved with ``JITModel.save`` (no export.json: a plain model folder)."""
    frame, y = training_table()
    model = make_model("logreg", features=FEATURES).fit(frame, y)
    return model.save(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> JITModel:
    return load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def probability(tiny_model: JITModel) -> Callable[[float, float, float], float]:
    """The tiny model's probability for hand-counted (la, ld, nf): the expected value of a scored commit."""

    def predict_one(la: float, ld: float, nf: float) -> float:
        row = pd.DataFrame({"la": [float(la)], "ld": [float(ld)], "nf": [float(nf)]})
        return float(tiny_model.predict_proba(row)[0, 1])

    return predict_one


@pytest.fixture
def risky_repo(tmp_path: Path) -> RepoBuilder:
    """Four commits; hand counts (la, ld, nf) against the parent:

    * c0 ``initial import``: src/app.py 20 lines + README 2 lines -> (22, 0, 2)
    * c1 ``Tweak readme``: README gains "three" -> (1, 0, 1)
    * c2 ``Add parser``: new src/parser.py 800 lines, src/app.py 20 -> 32 lines -> (812, 0, 2)
    * c3 ``Fix typo in app``: "line 3" -> "LINE 3" in src/app.py -> (1, 1, 1)
    """
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("initial import", {"src/app.py": lines(20), "README": "one\ntwo\n"}, days=0)
    repo.commit("Tweak readme", {"README": "one\ntwo\nthree\n"}, days=1)
    repo.commit("Add parser", {"src/parser.py": lines(800, "p"), "src/app.py": lines(32)}, author=BOB, days=1)
    repo.commit("Fix typo in app", {"src/app.py": lines(32).replace("line 3\n", "LINE 3\n")}, days=1)
    return repo


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("predict")(predict)
    models = typer.Typer()
    models.command("export")(models_export)
    app.add_typer(models, name="models")
    return app


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``defectops <args>`` in-process the way ``defectops.cli.main`` maps errors to exit codes."""
    app = _app()

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            app(args=list(args), standalone_mode=False)
            code = 0
        except DefectOpsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = exc.exit_code
        except Exception as exc:  # Click's usage errors, as main() prints them
            usage = usage_error_message(exc, list(args))
            if usage is None:
                raise
            print(f"error: {usage}", file=sys.stderr)
            code = 2
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
