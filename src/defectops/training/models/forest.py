"""Random forest or extremely randomised trees (``rf``), explained by Saabas decision-path terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.training.models.base import JITModel
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.persistence import PERSISTED_MODULE, skops_dump, skops_load


class ForestJIT(JITModel):
    """Random forest (``extra_trees=True``: extremely randomised trees) on the raw features. The raw score is
    the forest vote; explanations are Saabas decision-path terms (exact for the vote)."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "rf"
    _neutral_raw = 0.5

    def __init__(
        self,
        features: Sequence[str] | None = None,
        n_estimators: int = 300,
        min_samples_leaf: int = 5,
        max_features: float = 0.5,
        max_depth: int | None = None,
        extra_trees: bool = False,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_depth = max_depth
        self.extra_trees = extra_trees
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        cls = ExtraTreesClassifier if self.extra_trees else RandomForestClassifier
        self.forest_ = cls(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_depth=self.max_depth,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(np.nan_to_num(inputs.numeric), y, sample_weight=w)

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.forest_.predict_proba(np.nan_to_num(inputs.numeric))[:, 1], dtype=np.float64
        )
        return result

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        from scipy import sparse

        X = np.nan_to_num(inputs.numeric).astype(np.float32)
        n_features = len(self.features_)
        total = np.zeros((len(inputs), n_features))
        bias = 0.0
        for tree in self.forest_.estimators_:
            t = tree.tree_
            value = t.value[:, 0, :]
            value = value[:, 1] / np.maximum(value.sum(axis=1), 1e-300)
            parent = np.full(t.node_count, -1)
            for node in range(t.node_count):
                for child in (t.children_left[node], t.children_right[node]):
                    if child >= 0:
                        parent[child] = node
            nodes = np.arange(t.node_count)
            has_parent = parent >= 0
            step = sparse.csr_matrix(
                (
                    value[nodes[has_parent]] - value[parent[has_parent]],
                    (nodes[has_parent], t.feature[parent[has_parent]]),
                ),
                shape=(t.node_count, n_features),
            )
            path = tree.decision_path(X)
            total += np.asarray((path @ step).todense())
            bias += float(value[0])
        n_trees = len(self.forest_.estimators_)
        total /= n_trees
        return [
            (
                bias / n_trees,
                [(n, float(inputs.numeric[i, j]), float(total[i, j])) for j, n in enumerate(self.features_)],
            )
            for i in range(len(inputs))
        ]

    def _save_files(self, folder: Path) -> None:
        skops_dump(self.forest_, folder / "forest.skops")

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.forest_ = skops_load(folder / "forest.skops")
