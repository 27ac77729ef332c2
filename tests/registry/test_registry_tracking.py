"""Tracking configuration and the logged training run (real MLflow on the session's SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from defectops.config import Settings, TrackingSettings
from defectops.errors import InputError, ModelError
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import load_reference, log_training_run
from defectops.registry.tracking import TrackingConfig

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def test_embedded_default_lives_in_the_workspace(tmp_path: Path) -> None:
    config = TrackingConfig.resolve(tmp_path / "ws")
    root = (tmp_path / "ws").resolve()
    assert config.tracking_uri == f"sqlite:///{root}/mlflow/mlflow.db"
    assert config.registry_uri == config.tracking_uri
    assert config.artifact_location == (root / "mlflow" / "artifacts").as_uri()
    assert config.audit_url == f"sqlite:///{root}/registry_audit.db"
    assert config.experiment_name == "defectops"
    assert config.embedded
    assert not (tmp_path / "ws").exists()  # resolving creates nothing


def test_settings_workspace_is_used(tmp_path: Path) -> None:
    config = TrackingConfig.from_settings(Settings(workspace=tmp_path / "w2"))
    assert config.workspace == (tmp_path / "w2").resolve()


def test_tracking_settings_read_mlflow_and_defectops_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("DEFECTOPS_MLFLOW_EXPERIMENT", "jit")
    monkeypatch.setenv("DEFECTOPS_AUDIT_DB_URL", "sqlite:////tmp/audit.db")
    tracking = Settings().tracking
    assert (tracking.tracking_uri, tracking.experiment, tracking.audit_db_url) == (
        "http://mlflow.internal:5000",
        "jit",
        "sqlite:////tmp/audit.db",
    )
    # blank means unset: an exported-but-empty variable keeps the embedded default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "  ")
    assert TrackingConfig.from_settings(Settings()).embedded


def test_mlflow_tracking_uri_overrides_the_default(tmp_path: Path) -> None:
    server = TrackingConfig.resolve(
        tmp_path,
        TrackingSettings(tracking_uri="http://user:secret@mlflow.internal:5000", experiment="x"),
    )
    assert server.tracking_uri == "http://user:secret@mlflow.internal:5000"
    assert server.registry_uri == server.tracking_uri
    assert server.artifact_location is None  # the server owns its artifact store
    assert server.experiment_name == "x"
    assert not server.embedded
    # the audit table never stores credentials of the registry it describes
    assert ModelRegistry(server).registry_key == "http://mlflow.internal:5000"

    database = TrackingConfig.resolve(
        tmp_path,
        TrackingSettings(
            tracking_uri="postgresql+psycopg://db/mlflow",
            registry_uri="postgresql+psycopg://db/registry",
            audit_db_url="postgresql+psycopg://db/audit",
        ),
    )
    assert database.registry_uri == "postgresql+psycopg://db/registry"
    # a database store without a server would put artifacts in ./mlruns; they stay in the workspace
    assert database.artifact_location == (tmp_path.resolve() / "mlflow" / "artifacts").as_uri()
    assert database.audit_url == "postgresql+psycopg://db/audit"


def test_training_run_logs_everything(tracking_config: TrackingConfig, tiny_model, tmp_path: Path) -> None:
    model, frame, y = tiny_model
    reference = frame.assign(label=y)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    html = tmp_path / "report.html"
    html.write_text("<html>ok</html>")
    run = log_training_run(
        model,
        features=["la", "ld", "nf"],
        reference=reference,
        params={"C": 1.0, "grid": {"C": [0.1, 1.0]}},
        metrics={"roc_auc": 0.81, "brier": 0.12},
        dataset_fingerprint={"sha256": "f00d", "rows": 60},
        config=tracking_config,
        threshold=0.35,
        plots={"roc": fig, "report": html},
        tags={"repo": "demo"},
        run_name="tracking-test",
    )
    plt.close(fig)

    client = MlflowClient(tracking_uri=tracking_config.tracking_uri)
    data = client.get_run(run.run_id).data
    assert data.params == {"C": "1.0", "grid": '{"C": [0.1, 1.0]}'}
    assert data.metrics == {"roc_auc": 0.81, "brier": 0.12}
    assert data.tags["defectops.dataset_fingerprint"] == "f00d"
    assert data.tags["defectops.threshold"] == "0.35"
    assert data.tags["repo"] == "demo"
    assert data.tags["defectops.serialization"] == "skops"
    files = {a.path for a in client.list_artifacts(run.run_id, "plots")}
    assert files == {"plots/roc.png", "plots/report.html"}

    fingerprint = client.download_artifacts(run.run_id, "dataset/fingerprint.json")
    assert json.loads(Path(fingerprint).read_text()) == {"rows": 60, "sha256": "f00d"}

    snapshot = load_reference(run.run_id, config=tracking_config)
    pd.testing.assert_frame_equal(snapshot, reference.reset_index(drop=True))
    assert run.reference_rows == 60

    # the model: sklearn flavour in skops, pyfunc predicting probabilities, signature and metadata
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=run.model_uri, tracking_uri=tracking_config.tracking_uri
    )
    mlmodel = Model.load(local)
    assert mlmodel.flavors["sklearn"]["serialization_format"] == "skops"
    assert mlmodel.flavors["python_function"]["predict_fn"] == "predict_proba"
    assert mlmodel.signature.inputs.input_names() == ["la", "ld", "nf"]
    assert mlmodel.metadata["defectops"]["features"] == ["la", "ld", "nf"]
    assert mlmodel.metadata["defectops"]["threshold"] == 0.35
    assert (Path(local) / "input_example.json").is_file()
    requirements = (Path(local) / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("skops==") for r in requirements)
    pyfunc = mlflow.pyfunc.load_model(local)
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(frame[["la", "ld", "nf"]].head(3))),
        model.predict_proba(frame[["la", "ld", "nf"]].head(3)),
    )


def test_reference_is_sampled_deterministically_in_order(tracking_config: TrackingConfig, tiny_model) -> None:
    model, frame, _ = tiny_model
    indexed = frame.assign(row=np.arange(len(frame)))
    runs = [
        log_training_run(
            model,
            features=["la", "ld", "nf"],
            reference=indexed,
            params={},
            metrics={},
            dataset_fingerprint="fp-sampled",
            config=tracking_config,
            reference_max_rows=10,
            reference_seed=7,
        )
        for _ in range(2)
    ]
    first, second = (load_reference(r.run_id, config=tracking_config) for r in runs)
    assert len(first) == 10
    assert first["row"].is_monotonic_increasing  # time order kept
    pd.testing.assert_frame_equal(first, second)  # same seed, same sample


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ["la", "missing"]}, "lacks feature columns: missing"),
        ({"features": []}, "feature list is empty"),
        ({"features": ["la", "la"]}, "duplicate feature names: la"),
        ({"threshold": 1.0}, "threshold must lie strictly between 0 and 1"),
        ({"metrics": {"auc": "high"}}, "metric 'auc' is not a number"),
        ({"dataset_fingerprint": " "}, "dataset fingerprint is empty"),
        ({"plots": {"roc": "/nonexistent/plot.png"}}, "does not exist"),
        ({"plots": {"../escape": "x"}}, "plain file stem"),
    ],
)
def test_bad_inputs_are_refused_before_logging(
    tracking_config: TrackingConfig, tiny_model, kwargs: dict[str, object], message: str
) -> None:
    model, frame, _ = tiny_model
    arguments: dict[str, object] = {
        "features": ["la", "ld", "nf"],
        "reference": frame,
        "params": {},
        "metrics": {},
        "dataset_fingerprint": "fp",
        "config": tracking_config,
        **kwargs,
    }
    with pytest.raises(InputError, match=message):
        log_training_run(model, **arguments)  # type: ignore[arg-type]


def test_a_model_that_cannot_score_its_features_is_refused(
    tracking_config: TrackingConfig, tiny_model
) -> None:
    model, frame, _ = tiny_model
    with pytest.raises(ModelError, match="cannot score its own reference rows"):
        log_training_run(
            model,
            features=["la", "ld"],  # fitted on three columns
            reference=frame,
            params={},
            metrics={},
            dataset_fingerprint="fp",
            config=tracking_config,
        )


def test_models_skops_cannot_read_back_fall_back_to_cloudpickle(
    tracking_config: TrackingConfig, tiny_model, model_name: str
) -> None:
    from datetime import UTC, datetime

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    _, frame, y = tiny_model
    features = ["la", "ld", "nf"]
    # skops writes a lambda but cannot load it back
    model = make_pipeline(FunctionTransformer(lambda a: np.log1p(a)), LogisticRegression(max_iter=500))
    model.fit(frame[features], y)
    common = {
        "features": features,
        "reference": frame,
        "params": {},
        "metrics": {},
        "dataset_fingerprint": "fp",
        "config": tracking_config,
    }
    with pytest.raises(ModelError, match="skops cannot serialise this model"):
        log_training_run(model, serialization="skops", **common)  # type: ignore[arg-type]
    run = log_training_run(model, **common)  # type: ignore[arg-type]
    assert run.serialization_format == "cloudpickle"
    assert any(r.startswith("cloudpickle==") for r in run.pip_requirements)
    registry = ModelRegistry(tracking_config)
    registry.register(
        model_name, run.model_uri, who="ci", why="fallback", now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    loaded = registry.load(model_name, alias="challenger")
    assert loaded.meta.serialization_format == "cloudpickle"
    np.testing.assert_allclose(loaded.score(frame), model.predict_proba(frame[features])[:, 1])
