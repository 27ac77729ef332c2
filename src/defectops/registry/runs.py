"""How a training run is logged to MLflow and registered.

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
import math
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from defectops.console import redact_url
from defectops.errors import InputError, ModelError, NotFoundError

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from defectops.registry.records import ModelVersionInfo
    from defectops.registry.registry import ModelRegistry

from defectops.registry.tracking import (
    _ARTIFACT_NAME,
    _MAX_PARAM_CHARS,
    _MAX_TAG_CHARS,
    METADATA_FORMAT,
    METADATA_KEY,
    MODEL_ARTIFACT,
    REFERENCE_ARTIFACT,
    SerializationChoice,
    TrackingConfig,
    activate,
    ensure_experiment,
    mlflow_errors,
    unavailable_error,
)

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

    # A text-aware model also reads text columns (hybrid: message and changed lines) beside its features.
    # Those the reference does not keep (the main job and heal log no text: changed lines are code) are
    # empty in the input example, which then shows the columns without anyone's code.
    reads = getattr(model, "input_columns", None)
    text = [c for c in (reads() if callable(reads) else []) if c not in feature_list]
    kept = [c for c in text if c in reference.columns]
    example = reference.loc[:, [*feature_list, *kept]].head(input_example_rows).reset_index(drop=True)
    for column in text:
        if column not in kept:
            example[column] = ""
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


@dataclass(frozen=True, slots=True)
class Registration:
    """A trained model logged (``run``) and registered as the new challenger (``version``)."""

    run: TrainingRun
    version: ModelVersionInfo


def register_trained_model(
    registry: ModelRegistry,
    name: str,
    model: Any,
    *,
    features: Sequence[str],
    table: pd.DataFrame,
    metrics: Mapping[str, float],
    dataset_fingerprint: str | Mapping[str, Any],
    now: datetime,
    who: str,
    why: str,
    job: str,
    run_name: str | None = None,
    plots: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Registration:
    """Log a trained model's run and register it as ``challenger``: the one path from a trained model to the
    registry (``defectops train --register``, the main job ``defectops run`` and the heal loop).

    The run logs the model (with its own ``threshold_`` and parameters), ``metrics``, the dataset
    fingerprint, ``plots``, and as reference snapshot the rows of ``table`` it learnt from (its features,
    effort, label and time). The registration is audited (``register``) with the finite ``metrics`` and
    ``evidence``; promotion stays a separate, gated step. ``run_name`` defaults to ``"<job> <now>"``.
    ``tags`` and ``params`` are added to the run's (e.g. the feature set the main job chose, and why).
    """
    from defectops.data import EFFORT, LABEL, TIME, normalise_frame
    from defectops.registry.records import CROSS_PROJECT, TAG_ORIGIN

    feature_list = list(features)
    origin = {TAG_ORIGIN: CROSS_PROJECT} if getattr(model, "cross_project", False) else {}
    run = log_training_run(
        model,
        features=feature_list,
        # the feature contract: the reference holds the metrics as the service logs them (float64)
        reference=normalise_frame(table[[*feature_list, EFFORT, LABEL, TIME]]),
        params={
            **{k: v for k, v in model.get_params(deep=False).items() if k != "features"},
            **dict(params or {}),
        },
        metrics=metrics,
        dataset_fingerprint=dataset_fingerprint,
        config=registry.config,
        threshold=float(model.threshold_),
        plots=dict(plots or {}),
        tags={"defectops.kind": str(model.kind), "defectops.job": job, **dict(tags or {}), **origin},
        run_name=run_name or f"{job} {now:%Y-%m-%d %H:%M}",
    )
    version = registry.register(
        name,
        run.model_uri,
        who=who,
        why=why,
        now=now,
        # NaN (e.g. ROC-AUC of a one-class window) is not JSON: the audit record leaves such metrics out
        evidence={
            "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
            **dict(evidence or {}),
        },
        tags=origin,
    )
    return Registration(run=run, version=version)


def load_reference(run_id: str, *, config: TrackingConfig) -> pd.DataFrame:
    """The reference snapshot logged by a training run (for drift monitoring)."""
    import mlflow
    import pandas as pd

    activate(config)
    try:
        with mlflow_errors(f"no reference snapshot for run {run_id}"):
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=REFERENCE_ARTIFACT,
                tracking_uri=config.tracking_uri,
            )
    except NotFoundError:
        _check_reference_listed(run_id, config)
        raise
    try:
        return pd.read_parquet(local)
    except (OSError, ValueError) as exc:
        raise ModelError(f"the reference snapshot of run {run_id} is unreadable: {exc}") from exc


def _check_reference_listed(run_id: str, config: TrackingConfig) -> None:
    """MLflow reports any failed download as 'path not found' (its runs:/ repository swallows the cause): an
    artifact store that is down (S3 behind the tracking server answering 500, an unreachable endpoint) read
    as 'no reference snapshot' (exit 7). Listing the run's artifacts tells the two apart: a ModelError when
    the store does not answer, or lists the snapshot it did not deliver; nothing when it is really absent."""
    from mlflow import MlflowClient

    folder = REFERENCE_ARTIFACT.rsplit("/", 1)[0]
    try:
        listed = MlflowClient(tracking_uri=config.tracking_uri).list_artifacts(run_id, folder)
    except Exception as exc:  # MLflow's, botocore's, an OS error: the store itself failed
        action = f"cannot read the reference snapshot of run {run_id}"
        unavailable = unavailable_error(exc, f"{action}: the artifact store failed")
        if unavailable is not None:
            raise unavailable from exc
        reason = redact_url(" ".join(str(exc).split()))
        raise ModelError(f"{action}: the artifact store failed ({reason})") from exc
    if any(item.path == REFERENCE_ARTIFACT for item in listed):
        raise ModelError(
            f"cannot read the reference snapshot of run {run_id}: the artifact store lists it but did not "
            "deliver it"
        )


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
