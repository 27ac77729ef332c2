"""The log-linear and boosted models blended in log-odds (``blend``), the default's ensemble candidate (#20).

Why a blend: on small, drifting repositories the Kamei-style logistic regression on log-scaled metrics often
ranks later changes as well as LightGBM or better, and the two err differently (smooth monotone trends
against interactions and thresholds). Averaging their raw log-odds,
``raw = (1 - w) * raw_boosted + w * raw_linear``, keeps the shape every model here has: each part's raw
score is an exact sum of per-feature terms (TreeSHAP for the trees, ``coef * standardised value`` for the
linear part), so the blend's terms are ``(1 - w) * shap_j + w * coef_j * z_j`` and its explanations stay
exact after Platt scaling. The weight ``w`` (``linear_weight``) is not tuned here: the training selection
(:func:`defectops.training.choice.choose_model`) picks it on time-ordered validation folds of the training
part. Both parts learn from the same row weights (class balance and recency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.errors import InputError
from defectops.training.models.base import JITModel
from defectops.training.models.boosting import LightGBMJIT
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.linear import LogisticJIT
from defectops.training.models.persistence import PERSISTED_MODULE


class BlendJIT(JITModel):
    """LightGBM and the Kamei-style logistic regression, blended in raw log-odds with weight
    ``linear_weight`` on the linear part (module docstring). The LightGBM parameters and defaults are those
    of :class:`LightGBMJIT`; ``C`` is the logistic regression's."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "blend"

    def __init__(
        self,
        features: Sequence[str] | None = None,
        linear_weight: float = 0.5,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int | None = None,
        colsample_bytree: float = 0.8,
        subsample: float = 0.8,
        reg_lambda: float = 1.0,
        extra_trees: bool = True,
        max_bin: int = 255,
        C: float = 1.0,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = 365.0,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.linear_weight = linear_weight
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.extra_trees = extra_trees
        self.max_bin = max_bin
        self.C = C
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _weight(self) -> float:
        w = float(self.linear_weight)
        if not 0.0 <= w <= 1.0:
            raise InputError(f"linear_weight must be within [0, 1], got {self.linear_weight}")
        return w

    def _parts(self) -> tuple[LightGBMJIT, LogisticJIT]:
        """Unfitted parts; weights, calibration and recency are the blend's, so the parts have none."""
        boosted = LightGBMJIT(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            colsample_bytree=self.colsample_bytree,
            subsample=self.subsample,
            reg_lambda=self.reg_lambda,
            extra_trees=self.extra_trees,
            max_bin=self.max_bin,
            class_weight=None,
            half_life_days=None,
            cv_folds=0,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        linear = LogisticJIT(
            C=self.C, class_weight=None, half_life_days=None, cv_folds=0, random_state=self.random_state
        )
        for part in (boosted, linear):
            part.features_ = list(self.features_)
        return boosted, linear

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        self._weight()
        self.boosted_, self.linear_ = self._parts()
        self.boosted_._fit_core(inputs, y, w)
        self.linear_._fit_core(inputs, y, w)

    def _raw(self, inputs: Inputs) -> FloatArray:
        w = self._weight()
        result: FloatArray = (1.0 - w) * self.boosted_._raw(inputs) + w * self.linear_._raw(inputs)
        return result

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        w = self._weight()
        out = []
        for (b_bias, b_terms), (l_bias, l_terms) in zip(
            self.boosted_._terms(inputs), self.linear_._terms(inputs), strict=True
        ):
            terms = [
                (name, value, (1.0 - w) * bt + w * lt)
                for (name, value, bt), (_, _, lt) in zip(b_terms, l_terms, strict=True)
            ]
            out.append(((1.0 - w) * b_bias + w * l_bias, terms))
        return out

    def _state(self) -> dict[str, Any]:
        return {"linear": self.linear_._state()}

    def _save_files(self, folder: Path) -> None:
        self.boosted_._save_files(folder)

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        self.boosted_, self.linear_ = self._parts()
        self.boosted_._restore({}, folder)
        self.linear_._restore(state["linear"], folder)
