"""Loading a registered version: download its MLflow artifact, deserialise the estimator, and read the
metadata serving, monitoring and the gate need (:class:`ModelMeta`) into a :class:`LoadedModel`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from defectops.errors import InputError, ModelError, RegistryUnavailableError
from defectops.registry.records import (
    CROSS_PROJECT,
    TAG_FINGERPRINT,
    TAG_ORIGIN,
    TAG_THRESHOLD,
    float_or_none,
    from_millis,
)
from defectops.registry.tracking import METADATA_KEY, TrackingConfig, unavailable_error

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray


class ModelMeta(BaseModel):
    """What serving, monitoring and the gate need to know about a loaded model version."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    alias: str | None
    run_id: str | None
    model_uri: str
    source: str
    features: list[str]
    threshold: float
    dataset_fingerprint: str | None
    serialization_format: str | None
    created_at: datetime | None
    #: Trained on other projects (the starter), not on this repository's labels.
    cross_project: bool = False
    artifact_digest: str | None = None
    """SHA-256 of the downloaded artifact's files (names and bytes): what a reload compares, since a version
    number stays the same when its files are replaced or damaged in the artifact store."""


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised estimator with its registry metadata."""

    estimator: Any
    meta: ModelMeta
    positive_column: int = 1

    def score(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Defect probabilities for ``frame``'s rows, using exactly the model's features in its order."""
        import numpy as np

        missing = [f for f in self.meta.features if f not in frame.columns]
        if missing:
            raise InputError(f"missing feature columns for {self.meta.name} v{self.meta.version}: {missing}")
        try:
            columns = [*self.meta.features, *self.text_columns(frame)]
            proba = self.estimator.predict_proba(frame.loc[:, columns])
        except Exception as exc:  # an estimator failing on well-formed input is a model problem
            raise ModelError(
                f"{self.meta.name} v{self.meta.version} failed to score ({type(exc).__name__}: {exc})"
            ) from exc
        return np.asarray(proba, dtype=np.float64)[:, self.positive_column]

    def text_columns(self, frame: pd.DataFrame | None = None) -> list[str]:
        """The text columns a text-aware estimator reads beside its features (message, paths, changed
        lines), those of ``frame`` only when given."""
        reads = getattr(self.estimator, "input_columns", None)
        columns = [str(c) for c in (reads() if callable(reads) else []) if c not in self.meta.features]
        return [c for c in columns if frame is None or c in frame.columns]


def load_version(
    config: TrackingConfig, mv: Any, *, name: str, version: int, alias: str | None
) -> LoadedModel:
    """Load the registered version ``mv`` (``name`` v``version``, reached through ``alias`` if any).

    ModelError when the artifact is missing, corrupt, or not a probabilistic classifier.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import Model

    uri = f"models:/{name}/{version}"
    try:
        # a private copy, deleted once the estimator is in memory (remote stores would otherwise leave
        # one temporary folder per load behind in a long-running service)
        with tempfile.TemporaryDirectory(prefix="defectops-model-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri,
                    dst_path=tmp,
                    tracking_uri=config.tracking_uri,
                    registry_uri=config.registry_uri,
                )
            except Exception as exc:  # a store that does not answer is no verdict on the files
                unavailable = unavailable_error(exc, f"cannot download the artifact of {name} v{version}")
                if unavailable is None:
                    raise
                raise unavailable from exc
            digest = artifact_digest(local)
            mlmodel = Model.load(local)
            estimator = mlflow.sklearn.load_model(local)
    except RegistryUnavailableError:
        raise
    except Exception as exc:  # missing files, corrupt zip/skops/pickle, unknown classes: all unusable
        raise ModelError(
            f"the artifact of {name} v{version} cannot be loaded ({type(exc).__name__}: {exc})"
        ) from exc
    positive = _positive_column(estimator)
    if positive is None:
        raise ModelError(
            f"{name} v{version} is not a binary probabilistic classifier (predict_proba, 2 classes)"
        )
    own = (mlmodel.metadata or {}).get(METADATA_KEY, {}) if isinstance(mlmodel.metadata, dict) else {}
    features = [str(f) for f in own.get("features", [])]
    if not features and mlmodel.signature is not None:
        features = list(mlmodel.signature.inputs.input_names())
    if not features:
        raise ModelError(f"{name} v{version} records no feature names (no defectops metadata, no signature)")
    threshold = float(own.get("threshold", float_or_none(mv.tags.get(TAG_THRESHOLD)) or 0.5))
    flavor = mlmodel.flavors.get("sklearn", {})
    meta = ModelMeta(
        name=name,
        version=version,
        alias=alias,
        run_id=mv.run_id or None,
        model_uri=uri,
        source=str(mv.source),
        features=features,
        threshold=threshold,
        dataset_fingerprint=own.get("dataset_fingerprint") or mv.tags.get(TAG_FINGERPRINT),
        serialization_format=flavor.get("serialization_format"),
        created_at=from_millis(mv.creation_timestamp),
        cross_project=(mv.tags or {}).get(TAG_ORIGIN) == CROSS_PROJECT
        or bool(getattr(estimator, "cross_project", False)),
        artifact_digest=digest,
    )
    return LoadedModel(estimator=estimator, meta=meta, positive_column=positive)


def artifact_digest(directory: str | os.PathLike[str]) -> str:
    """SHA-256 over the relative paths and contents of every file under ``directory``, in sorted order."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _positive_column(estimator: Any) -> int | None:
    """The ``predict_proba`` column of the defective class (label 1/True); None unless binary."""
    if not callable(getattr(estimator, "predict_proba", None)):
        return None
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return 1  # scikit-learn's convention for binary classifiers without classes_ (e.g. some wrappers)
    labels = list(classes)
    if len(labels) != 2:
        return None
    return labels.index(1) if 1 in labels else 1


#: Rows of the reference snapshot a version scores before it may become champion.
SMOKE_ROWS = 5


def smoke_score(loaded: LoadedModel, reference: pd.DataFrame | None, *, what: str) -> None:
    """ModelError unless ``loaded`` scores up to :data:`SMOKE_ROWS` complete reference rows (a row of zeros
    without a reference) to finite probabilities in [0, 1].

    Why before every move of the champion alias (issue #14): ``models promote`` of a truncated artifact used
    to succeed, and the next start of the service answered 503 to every prediction until someone rolled back.
    """
    import numpy as np
    import pandas as pd

    features = list(loaded.meta.features)
    text = loaded.text_columns()
    rows = pd.DataFrame()
    if reference is not None and {*features, *text} <= set(reference.columns):
        rows = reference[[*features, *text]].dropna().head(SMOKE_ROWS)
    if rows.empty:
        rows = pd.DataFrame({**{f: [0.0] for f in features}, **{c: [""] for c in text}})
    try:
        probabilities = np.asarray(loaded.score(rows), dtype=np.float64)
    except Exception as exc:
        raise ModelError(f"{what} does not score: {type(exc).__name__}: {exc}") from exc
    if len(probabilities) != len(rows) or not np.all(np.isfinite(probabilities)):
        raise ModelError(f"{what} scores no finite probabilities")
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ModelError(f"{what} scores probabilities outside [0, 1]")
