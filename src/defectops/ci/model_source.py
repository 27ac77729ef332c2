"""Where ``defectops predict`` gets its model: a folder made by ``defectops models export``, or the registry.

Why an exported folder: a CI job should not need the MLflow server (nor its credentials, nor MLflow's import
time) to score a pull request. ``models export`` writes the registry's model in the :meth:`JITModel.save`
format plus ``export.json`` (name, version, alias, threshold, risk bands, features, where it came from);
``predict --model-dir`` loads that with :func:`~defectops.training.models.load_model` only.

A model must be a :class:`~defectops.training.models.JITModel`: predict explains every commit, and only the
model zoo's models give exact explanations.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from defectops import __version__
from defectops.config import Settings
from defectops.errors import InputError, ModelError, NotFoundError
from defectops.training import JITModel, RiskBands, describe_starter, load_model, load_starter

#: The metadata file ``models export`` writes next to ``model.json``.
EXPORT_FILE = "export.json"
EXPORT_FORMAT = 1


@dataclass(frozen=True)
class ModelSource:
    """A loaded model with what the reports show about it."""

    model: JITModel
    name: str
    version: str
    threshold: float
    bands: RiskBands
    origin: str

    @property
    def cross_project(self) -> bool:
        """Trained on other projects (the starter), not on this repository's labels."""
        return bool(getattr(self.model, "cross_project", False))

    @property
    def label(self) -> str:
        """How the reports name the model: ``name version``, marked when it is cross-project."""
        text = f"{self.name} {self.version}"
        return f"{text} (CROSS-PROJECT starter: trained on other projects)" if self.cross_project else text

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "threshold": self.threshold,
            "bands": self.bands.as_dict(),
            "origin": self.origin,
            "cross_project": self.cross_project,
            "description": describe_starter(self.model) or None,
        }


def bands_of(model: JITModel, what: str) -> RiskBands:
    """The model's risk bands (multiples of its base rate, backed by its out-of-fold training examples)."""
    try:
        return model.risk_bands()
    except ModelError as exc:
        raise ModelError(f"{what}: {exc}") from None


def load_model_dir(path: Path) -> ModelSource:
    """A model folder (``JITModel.save`` output, optionally with ``export.json``); no MLflow involved."""
    if not path.exists():
        raise ModelError(
            f"no model at {path}: the folder does not exist (make one with `defectops models export`)"
        )
    if not path.is_dir():
        raise ModelError(f"{path} is not a model folder (make one with `defectops models export`)")
    model = load_model(path)
    meta: dict[str, Any] = {}
    meta_path = path / EXPORT_FILE
    if meta_path.is_file():
        try:
            loaded = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_path}: unreadable ({exc})") from None
        if not isinstance(loaded, dict) or loaded.get("format") != EXPORT_FORMAT:
            raise ModelError(f"{meta_path}: not a defectops export (format {EXPORT_FORMAT} expected)")
        meta = loaded
    threshold = _threshold(meta.get("threshold", model.threshold_), str(meta_path))
    return ModelSource(
        model=model,
        name=str(meta.get("name") or path.resolve().name),
        version=str(meta.get("version") or "local"),
        threshold=threshold,
        bands=bands_of(model, str(path)),
        origin=str(path),
    )


def _threshold(value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelError(f"{where}: threshold {value!r} is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise ModelError(f"{where}: threshold {number} is not within [0, 1]")
    return number


def load_registry_model(name: str, *, alias: str, settings: Settings) -> ModelSource:
    """The version that ``alias`` (default ``champion``) of ``name`` points to, from the MLflow registry."""
    from defectops.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    config = registry.config
    if config.embedded and not os.path.exists(config.tracking_uri[len("sqlite:///") :]):
        # answer without creating (and migrating) an empty embedded database
        raise NotFoundError(
            f"unknown model {name!r}: nothing is registered in this workspace (set MLFLOW_TRACKING_URI, or "
            "use --model-dir with a folder from `defectops models export`)"
        )
    loaded = registry.load(name, alias=alias)
    estimator = loaded.estimator
    what = f"{name} v{loaded.meta.version}"
    if not isinstance(estimator, JITModel):
        raise ModelError(
            f"{what} is a {type(estimator).__name__}, not a defectops model; predict needs the exact "
            "explanations of defectops' model zoo"
        )
    return ModelSource(
        model=estimator,
        name=name,
        version=str(loaded.meta.version),
        threshold=_threshold(loaded.meta.threshold, what),
        bands=bands_of(estimator, what),
        origin=loaded.meta.model_uri,
    )


def starter_source() -> ModelSource:
    """The shipped cross-project starter (no registry, no MLflow); ``run_predict`` fits it to the repository's
    mined history before scoring."""
    model = load_starter()
    version = f"starter-v{model.starter_version}"
    return ModelSource(
        model=model,
        name="defectops-starter",
        version=version,
        threshold=model.threshold_,
        bands=bands_of(model, "the starter"),
        origin="defectops.training.starter (shipped with defectops)",
    )


def resolve_model(
    *,
    model_dir: Path | None,
    model_name: str | None,
    alias: str,
    settings: Settings,
    starter: bool = False,
) -> ModelSource:
    """Exactly one of ``model_dir`` / ``model_name`` / ``starter``; a clear error for none or several."""
    if sum((model_dir is not None, model_name is not None, starter)) > 1:
        raise InputError("give only one of --model-dir, --model-name and --starter")
    if starter:
        return starter_source()
    if model_dir is not None:
        return load_model_dir(model_dir)
    if model_name is not None:
        return load_registry_model(model_name, alias=alias, settings=settings)
    raise ModelError(
        "no model: give --model-dir DIR (a folder from `defectops models export`) or --model-name NAME "
        "(its champion in the registry)"
    )


@dataclass(frozen=True)
class ExportResult:
    """What ``models export`` wrote."""

    out: Path
    metadata: dict[str, Any]


def export_model(name: str, *, alias: str, out: Path, now: datetime, settings: Settings) -> ExportResult:
    """Write the registry's ``name@alias`` as a standalone model folder at ``out`` (absent or empty).

    The folder is written next to ``out`` under a temporary name and renamed when complete, so ``out``
    never holds half a model.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder; choose a new --out")
    source = load_registry_model(name, alias=alias, settings=settings)
    metadata: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "name": source.name,
        "version": source.version,
        "alias": alias,
        "threshold": source.threshold,
        "bands": source.bands.as_dict(),
        "features": list(source.model.features_),
        "input_columns": source.model.input_columns(),
        "kind": source.model.kind,
        "model_uri": source.origin,
        "exported_at": now.isoformat(),
        "defectops_version": __version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex}")
    try:
        source.model.save(staging)
        (staging / EXPORT_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        load_model_dir(staging)  # what predict will do: refuse to hand over a folder that does not load
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ExportResult(out=out, metadata=metadata)
