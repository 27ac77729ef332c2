"""Versions and reference snapshots the UI explains with, loaded once per process and kept.

Why a cache: explaining a logged prediction needs the exact version that made it (its scorer gives the
signed contributions) and that version's training reference (the distribution a reason is compared with).
The champion and challenger the service holds are used as they are; any other version is loaded and
smoke-tested like a reload would (:meth:`ModelManager.load_version`) and kept, as are the snapshots: a few
versions' worth of memory, against seconds of MLflow downloads per page view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from defectops.errors import DefectOpsError

if TYPE_CHECKING:
    from defectops.serving.deployment import ServingModel
    from defectops.serving.service import PredictionService

#: Versions (and snapshots) kept besides those the deployment holds.
KEPT: Final = 4


class Explainers:
    """Loaded versions and reference snapshots of the service's model, by version."""

    def __init__(self, service: PredictionService) -> None:
        self.service = service
        self._models: OrderedDict[int, ServingModel] = OrderedDict()
        self._references: OrderedDict[int, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def model(self, version: int) -> ServingModel:
        """The serving model of ``version``: the deployment's if it holds it, else loaded (DefectOpsError
        when it cannot be)."""
        deployment = self.service.deployment
        for held in (deployment.champion, deployment.challenger):
            if held is not None and held.version == version:
                return held
        with self._lock:
            if version in self._models:
                self._models.move_to_end(version)
                return self._models[version]
        loaded = self.service.manager.load_version(version)
        with self._lock:
            self._models[version] = loaded
            while len(self._models) > KEPT:
                self._models.popitem(last=False)
        return loaded

    def reference(self, version: int) -> pd.DataFrame | None:
        """The training reference snapshot of ``version`` (None when it has none)."""
        with self._lock:
            if version in self._references:
                self._references.move_to_end(version)
                return self._references[version]
        manager = self.service.manager
        try:
            frame = manager.registry.load_reference(manager.model_name, version=version)
        except DefectOpsError:
            return None
        with self._lock:
            self._references[version] = frame
            while len(self._references) > KEPT:
                self._references.popitem(last=False)
        return frame


def base_rate(model: ServingModel) -> float | None:
    """Share of defect-inducing commits the model was calibrated on (None if the estimator does not say)."""
    rate = getattr(model.loaded.estimator, "positive_rate_", None)
    if rate is None:
        return None
    value = float(rate)
    return value if np.isfinite(value) else None


def input_matrix(model: ServingModel, rows: list[dict[str, object]]) -> np.ndarray:
    """The model's features of logged inputs as a float matrix (NaN where an input is missing)."""
    matrix = np.full((len(rows), len(model.features)), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        for j, feature in enumerate(model.features):
            value = row.get(feature)
            if isinstance(value, int | float):  # bool is an int: a logged ``fix`` flag counts as 0/1
                matrix[i, j] = float(value)
    return matrix


def text_inputs(model: ServingModel, rows: list[dict[str, object]]) -> dict[str, list[str]] | None:
    """The text columns a model reads (e.g. the message), from logged inputs."""
    if not model.text_columns:
        return None
    return {column: [str(row.get(column) or "") for row in rows] for column in model.text_columns}
