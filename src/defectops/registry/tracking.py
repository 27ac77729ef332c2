"""Where MLflow lives, and how a training run is logged to it.

Embedded default: an SQLite tracking/registry database ``<workspace>/mlflow/mlflow.db`` and a local artifact
folder ``<workspace>/mlflow/artifacts``, so a user with nothing but the workspace gets the full MLflow
experience (``mlflow ui --backend-store-uri sqlite:///<workspace>/mlflow/mlflow.db``). Setting
``MLFLOW_TRACKING_URI`` (and optionally ``MLFLOW_REGISTRY_URI``) points every function here at any other
MLflow store or server instead; nothing else changes.

MLflow is imported lazily inside functions: importing it costs seconds, and modules the CLI loads for
``--help`` must not pay that.

A training run logs: parameters, metrics, the dataset fingerprint (tag + JSON artifact), a reference snapshot
of the training features (``reference/features.parquet``; monitoring compares live traffic with it), plots,
and the model through MLflow's scikit-learn flavour with a signature, an input example,
``pyfunc_predict_fn="predict_proba"``, explicit pip requirements (inferring them spawns a subprocess and costs
seconds per model) and skops serialisation (safe loading) with a cloudpickle fallback for objects skops
cannot represent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from defectops.errors import InputError, ModelError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from defectops.config import Settings

#: Experiment used when ``DEFECTOPS_MLFLOW_EXPERIMENT`` is not set.
DEFAULT_EXPERIMENT = "defectops"
#: Artifact path of the logged model inside a run / logged-model record.
MODEL_ARTIFACT = "model"
#: Artifact path of the reference snapshot inside a training run.
REFERENCE_ARTIFACT = "reference/features.parquet"
#: Key under which defectops stores its metadata in the MLmodel file.
METADATA_KEY = "defectops"
#: Version of the metadata layout under :data:`METADATA_KEY` (bump on incompatible changes).
METADATA_FORMAT = 1

SerializationChoice = Literal["auto", "skops", "cloudpickle"]

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_MAX_PARAM_CHARS = 6000  # MLflow's limit for a parameter value
_MAX_TAG_CHARS = 250  # keep tags short enough for every MLflow backend's index


@dataclass(frozen=True)
class TrackingConfig:
    """Resolved MLflow locations plus the audit database; immutable so it can be passed around freely.

    ``artifact_location`` is where a newly created experiment stores artifacts; ``None`` leaves it to the
    tracking server (the right choice for ``http(s)://`` servers, which own their artifact store).
    """

    workspace: Path
    tracking_uri: str
    registry_uri: str
    artifact_location: str | None
    experiment_name: str
    audit_url: str

    @property
    def embedded_registry_uri(self) -> str:
        """The URI of the workspace's own SQLite database (whether or not it is the one in use)."""
        return _embedded_tracking_uri(self.workspace)

    @property
    def embedded(self) -> bool:
        """True when using the workspace's own SQLite database (nothing configured)."""
        return self.tracking_uri == self.embedded_registry_uri

    @classmethod
    def resolve(cls, workspace: Path, *, environ: Mapping[str, str]) -> TrackingConfig:
        """Resolve the configuration from a workspace and an environment mapping (``os.environ`` at the edge).

        Recognised variables: ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` (defaults to the tracking URI),
        ``DEFECTOPS_MLFLOW_EXPERIMENT``, ``DEFECTOPS_MLFLOW_ARTIFACTS`` (artifact root for new experiments)
        and ``DEFECTOPS_AUDIT_DB_URL`` (SQLAlchemy URL; default ``sqlite:///<workspace>/registry_audit.db``).
        """
        root = workspace.expanduser().resolve()
        tracking = environ.get("MLFLOW_TRACKING_URI", "").strip() or _embedded_tracking_uri(root)
        registry = environ.get("MLFLOW_REGISTRY_URI", "").strip() or tracking
        artifacts_env = environ.get("DEFECTOPS_MLFLOW_ARTIFACTS", "").strip()
        if artifacts_env:
            artifacts: str | None = _as_uri(artifacts_env)
        elif tracking.split(":", 1)[0].split("+", 1)[0] in _DB_SCHEMES or "://" not in tracking:
            # A database store without a server would otherwise put artifacts in ./mlruns of the current
            # directory; keep them in the workspace instead.
            artifacts = (root / "mlflow" / "artifacts").as_uri()
        else:
            artifacts = None
        experiment = environ.get("DEFECTOPS_MLFLOW_EXPERIMENT", "").strip() or DEFAULT_EXPERIMENT
        audit = environ.get("DEFECTOPS_AUDIT_DB_URL", "").strip() or f"sqlite:///{root / 'registry_audit.db'}"
        return cls(
            workspace=root,
            tracking_uri=tracking,
            registry_uri=registry,
            artifact_location=artifacts,
            experiment_name=experiment,
            audit_url=audit,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, environ: Mapping[str, str]) -> TrackingConfig:
        """Resolve from the application settings (their workspace) and the environment."""
        return cls.resolve(settings.resolved_workspace(), environ=environ)

    def ensure_local_dirs(self) -> None:
        """Create the folders that embedded SQLite files and local artifacts need (never on import)."""
        for uri in (self.tracking_uri, self.registry_uri, self.audit_url):
            path = _sqlite_path(uri)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        if self.artifact_location and self.artifact_location.startswith("file:"):
            _file_uri_to_path(self.artifact_location).mkdir(parents=True, exist_ok=True)


def _embedded_tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def _as_uri(location: str) -> str:
    """A plain path becomes a ``file://`` URI; anything with a scheme is kept."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location):
        return location
    return Path(location).expanduser().resolve().as_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if raw in {"", ":memory:"} else Path(raw)


def _file_uri_to_path(uri: str) -> Path:
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path))


# ----------------------------------------------------------------------------------------------------
# MLflow session helpers


def mlflow_error(exc: Exception, action: str) -> Exception:
    """Translate an MLflow exception into the defectops hierarchy (the caller raises it ``from exc``)."""
    code = str(getattr(exc, "error_code", ""))
    message = f"{action}: {getattr(exc, 'message', None) or exc}"
    if code in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}:
        return NotFoundError(message)
    if code in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}:
        return InputError(message)
    return ModelError(message)


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow exceptions raised inside the block into one-line defectops errors."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise mlflow_error(exc, action) from exc


def activate(config: TrackingConfig) -> Any:
    """Point MLflow's process-wide URIs at ``config`` and return an ``MlflowClient`` for it.

    MLflow's fluent API (``start_run``, ``log_model``) only reads the global URIs, so every public function
    here calls this first; that keeps successive calls with different configurations (tests, several
    workspaces) from leaking into each other.
    """
    import mlflow
    from mlflow import MlflowClient

    config.ensure_local_dirs()
    # mlflow.set_*_uri also export MLFLOW_*_URI into os.environ; left there, the next configuration resolved
    # from the environment (another workspace in the same process) would silently point at this store.
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.registry_uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)


def ensure_experiment(config: TrackingConfig, client: Any | None = None) -> str:
    """The id of the configured experiment, created (with the workspace artifact root) or restored if needed.

    On a fresh SQLite file the first call also runs MLflow's schema migrations (several seconds, once).
    """
    client = client if client is not None else activate(config)
    with mlflow_errors(f"cannot open MLflow experiment {config.experiment_name!r}"):
        experiment = client.get_experiment_by_name(config.experiment_name)
        if experiment is None:
            from mlflow.exceptions import MlflowException

            try:
                return str(
                    client.create_experiment(
                        config.experiment_name, artifact_location=config.artifact_location
                    )
                )
            except MlflowException as exc:  # another process created it in between
                experiment = client.get_experiment_by_name(config.experiment_name)
                if experiment is None:
                    raise exc from None
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)


# ----------------------------------------------------------------------------------------------------
# Logging a training run


class TrainingRun(BaseModel):
    """What :func:`log_training_run` produced; ``model_uri`` is what :meth:`ModelRegistry.register` takes."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str | None
    artifact_uri: str
    reference_path: str
    reference_rows: int
    features: list[str]
    threshold: float
    dataset_fingerprint: str
    serialization_format: str
    pip_requirements: list[str]


def log_training_run(
    model: Any,
    *,
    features: Sequence[str],
    reference: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    dataset_fingerprint: str | Mapping[str, Any],
    config: TrackingConfig,
    threshold: float = 0.5,
    plots: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    reference_max_rows: int | None = 50_000,
    reference_seed: int = 0,
    input_example_rows: int = 5,
    serialization: SerializationChoice = "auto",
    extra_pip_requirements: Sequence[str] = (),
) -> TrainingRun:
    """Log one training run with everything needed to reproduce, serve and monitor the model.

    ``model`` is any fitted scikit-learn-compatible classifier with ``predict_proba`` taking a DataFrame of
    ``features`` (in that order). ``reference`` holds the training rows; at least the ``features`` columns
    (other columns are kept, e.g. a label or time column useful to monitoring). It is stored as Parquet,
    down-sampled to ``reference_max_rows`` rows with a seeded sample that keeps the row order (``None`` keeps
    all rows). ``plots`` maps a file stem to a matplotlib figure or to an existing image/HTML file.
    ``threshold`` is the decision threshold the model was tuned for; it travels with the model.

    Raises InputError for unusable inputs and ModelError when MLflow or serialisation fails.
    """
    import mlflow
    import mlflow.sklearn

    feature_list = _check_features(features, reference)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    if input_example_rows < 1:
        raise InputError("input_example_rows must be at least 1")
    if reference_max_rows is not None and reference_max_rows < 1:
        raise InputError("reference_max_rows must be at least 1 (or None for all rows)")
    if len(reference) == 0:
        raise InputError("the reference snapshot is empty: log the rows the model was trained on")
    clean_params = _check_params(params)
    clean_metrics = _check_metrics(metrics)
    fingerprint_tag, fingerprint_doc = _fingerprint(dataset_fingerprint)
    plot_items = _check_plots(plots or {})

    example = reference.loc[:, feature_list].head(input_example_rows).reset_index(drop=True)
    try:
        example_scores = model.predict_proba(example)
    except Exception as exc:  # any estimator failure means the model cannot serve these features
        raise ModelError(
            f"the model cannot score its own reference rows ({type(exc).__name__}: {exc})"
        ) from exc

    snapshot = _sample_rows(reference, reference_max_rows, reference_seed)
    fmt, trusted = _choose_serialization(model, serialization)
    requirements = _pip_requirements(model, trusted, fmt, extra_pip_requirements)

    client = activate(config)
    experiment_id = ensure_experiment(config, client)
    run_tags = {
        "defectops.kind": "training",
        "defectops.dataset_fingerprint": fingerprint_tag,
        "defectops.threshold": repr(float(threshold)),
        "defectops.feature_count": str(len(feature_list)),
        "defectops.serialization": fmt,
        **{str(k): str(v) for k, v in (tags or {}).items()},
    }
    metadata = {
        METADATA_KEY: {
            "format": METADATA_FORMAT,
            "features": feature_list,
            "threshold": float(threshold),
            "dataset_fingerprint": fingerprint_tag,
        }
    }
    from mlflow.models import infer_signature

    with (
        mlflow_errors("logging the training run to MLflow failed"),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            tags=run_tags,
            nested=mlflow.active_run() is not None,
        ) as run,
    ):
        if clean_params:
            mlflow.log_params(clean_params)
        if clean_metrics:
            mlflow.log_metrics(clean_metrics)
        mlflow.log_dict(fingerprint_doc, "dataset/fingerprint.json")
        with tempfile.TemporaryDirectory(prefix="defectops-ref-") as tmp:
            ref_file = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            try:
                snapshot.to_parquet(ref_file, index=False)
            except (ValueError, TypeError, ImportError) as exc:
                raise InputError(f"the reference snapshot cannot be written as Parquet: {exc}") from exc
            mlflow.log_artifact(str(ref_file), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        for stem, item in plot_items:
            if isinstance(item, Path):
                mlflow.log_artifact(str(item), artifact_path="plots")
            else:
                mlflow.log_figure(item, f"plots/{stem}.png")
        signature = infer_signature(example, example_scores)
        try:
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                signature=signature,
                input_example=example,
                pyfunc_predict_fn="predict_proba",
                pip_requirements=requirements,
                serialization_format=fmt,
                skops_trusted_types=trusted if fmt == "skops" else None,
                metadata=metadata,
                tags={"defectops.dataset_fingerprint": fingerprint_tag},
            )
        except mlflow.exceptions.MlflowException:
            raise
        except Exception as exc:  # serialisation of arbitrary estimators can fail in many ways
            raise ModelError(f"the model could not be saved ({type(exc).__name__}: {exc})") from exc
        run_id = run.info.run_id
        artifact_uri = run.info.artifact_uri

    return TrainingRun(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=str(info.model_uri),
        model_id=getattr(info, "model_id", None),
        artifact_uri=str(artifact_uri),
        reference_path=REFERENCE_ARTIFACT,
        reference_rows=len(snapshot),
        features=feature_list,
        threshold=float(threshold),
        dataset_fingerprint=fingerprint_tag,
        serialization_format=fmt,
        pip_requirements=requirements,
    )


def load_reference(run_id: str, *, config: TrackingConfig) -> pd.DataFrame:
    """The reference snapshot logged by a training run (for drift monitoring)."""
    import mlflow
    import pandas as pd

    activate(config)
    with mlflow_errors(f"no reference snapshot for run {run_id}"):
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=REFERENCE_ARTIFACT,
            tracking_uri=config.tracking_uri,
        )
    try:
        return pd.read_parquet(local)
    except (OSError, ValueError) as exc:
        raise ModelError(f"the reference snapshot of run {run_id} is unreadable: {exc}") from exc


# ----------------------------------------------------------------------------------------------------
# Input checks and helpers


def _check_features(features: Sequence[str], reference: pd.DataFrame) -> list[str]:
    if isinstance(features, str):
        raise InputError("features must be a list of column names, not one string")
    feature_list = [str(f) for f in features]
    if not feature_list:
        raise InputError("the feature list is empty")
    duplicates = sorted({f for f in feature_list if feature_list.count(f) > 1})
    if duplicates:
        raise InputError(f"duplicate feature names: {', '.join(duplicates)}")
    missing = [f for f in feature_list if f not in reference.columns]
    if missing:
        raise InputError(f"the reference snapshot lacks feature columns: {', '.join(missing)}")
    return feature_list


def _check_params(params: Mapping[str, Any]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in params.items():
        text = (
            json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value)
        )
        if len(text) > _MAX_PARAM_CHARS:
            raise InputError(
                f"parameter {key!r} is longer than {_MAX_PARAM_CHARS} characters; log it as a file"
            )
        clean[str(key)] = text
    return clean


def _check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            raise InputError(f"metric {key!r} is a boolean, not a number")
        try:
            clean[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"metric {key!r} is not a number: {value!r}") from exc
    return clean


def _fingerprint(value: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A short tag value plus the full document. Strings are used as given; mappings keep their own digest."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError("the dataset fingerprint is empty")
        if len(text) > _MAX_TAG_CHARS:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        return text, {"fingerprint": value}
    document = dict(value)
    try:
        canonical = json.dumps(document, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the dataset fingerprint is not JSON-serialisable: {exc}") from exc
    for key in ("content_sha256", "sha256", "fingerprint", "digest"):
        own = document.get(key)
        if isinstance(own, str) and own and len(own) <= _MAX_TAG_CHARS:
            return own, json.loads(canonical)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest(), json.loads(canonical)


def _check_plots(plots: Mapping[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for stem, item in plots.items():
        if not _ARTIFACT_NAME.match(stem):
            raise InputError(f"plot name {stem!r} must be a plain file stem (letters, digits, _ . -)")
        if isinstance(item, str | Path):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"plot file {path} does not exist")
            items.append((stem, path))
        elif hasattr(item, "savefig"):
            items.append((stem, item))
        else:
            raise InputError(f"plot {stem!r} is neither a matplotlib figure nor a file path")
    return items


def _sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, drawn with a seeded generator, in their original order."""
    import numpy as np

    if max_rows is None or len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[positions].reset_index(drop=True)


def _choose_serialization(model: Any, choice: SerializationChoice) -> tuple[str, list[str]]:
    """Pick skops when it can represent the model, trusting exactly the types the model itself contains.

    skops refuses to load types outside its default allow-list unless they are listed; we serialised the
    object ourselves a moment ago, so listing its own types is no wider than trusting the artifact store.
    """
    if choice == "cloudpickle":
        return "cloudpickle", []
    import skops.io

    try:
        # a full round trip: skops writes some objects (lambdas, local classes) that it cannot read back
        data = skops.io.dumps(model)
        trusted = sorted(skops.io.get_untrusted_types(data=data))
        skops.io.loads(data, trusted=trusted)
    except Exception as exc:  # skops raises assorted errors for objects it cannot represent
        if choice == "skops":
            raise ModelError(
                f"skops cannot serialise this model ({type(exc).__name__}: {exc}); use serialization='auto'"
            ) from exc
        return "cloudpickle", []
    return "skops", trusted


def _pip_requirements(model: Any, types: Sequence[str], fmt: str, extra: Sequence[str]) -> list[str]:
    """Pinned requirements for the packages the model's objects come from (no slow environment inference)."""
    modules = {"sklearn", "numpy", "scipy", "pandas", type(model).__module__.split(".", 1)[0]}
    modules.update(t.split(".", 1)[0] for t in types)
    modules.add("skops" if fmt == "skops" else "cloudpickle")
    pins = set(extra)
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module in {"builtins", "__main__"}:
            continue
        for dist in _distributions().get(module, []):
            version = _dist_version(dist)
            if version is not None:
                pins.add(f"{dist}=={version}")
    return sorted(pins)


@lru_cache(maxsize=1)
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def _dist_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
