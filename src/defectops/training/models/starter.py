"""The cross-project starter model (``starter``): trained on other projects, fitted to a repository's history.

A repository without enough matured labels cannot train a model of its own. The starter is a LightGBM model
trained on public just-in-time datasets of other projects (:mod:`defectops.training.starter`), on features
made comparable across projects by a per-repository transformation
(:class:`~defectops.training.models.repo_transform.RepoTransform`). Using it on a repository takes one step
that needs no labels: :meth:`StarterJIT.adapt` fits the transformation on the repository's mined history.

Explanations stay exact: the raw score is the booster's on the transformed features, and TreeSHAP splits it
into per-feature terms; a reason names the feature with its raw value (e.g. ``la = 230``), which is what the
term is about. Calibration (Platt scaling), the decision threshold and the base rate come from out-of-project
predictions made while training: they are what such a model achieves on a project it never saw, not on this
repository. Every surface shows the model as cross-project (:attr:`JITModel.cross_project`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.errors import InputError, ModelError
from defectops.training.models.base import JITModel
from defectops.training.models.boosting import LightGBMJIT
from defectops.training.models.inputs import FloatArray, Inputs, typical_ranges
from defectops.training.models.persistence import PERSISTED_MODULE
from defectops.training.models.repo_transform import RepoTransform


class StarterJIT(JITModel):
    """A LightGBM model of other projects behind a per-repository transformation (module docstring).

    ``transform`` is ``rank`` or ``log-z``; the booster's parameters are the default model's
    (:class:`LightGBMJIT`) unless given. ``training_data`` names the projects it learnt from.
    """

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "starter"
    cross_project: ClassVar[bool] = True

    def __init__(
        self,
        features: Sequence[str] | None = None,
        transform: str = "log-z",
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int | None = None,
        training_data: Sequence[str] = (),
        starter_version: str = "",
        class_weight: Literal["balanced"] | None = None,
        half_life_days: float | None = None,
        cv_folds: int = 0,
        cv_gap_days: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.transform = transform
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.training_data = training_data
        self.starter_version = starter_version
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.random_state = random_state

    # ------------------------------------------------------------------ building and adapting

    def booster_model(self) -> LightGBMJIT:
        """A fresh LightGBM model with this starter's booster parameters (no calibration, no recency)."""
        return LightGBMJIT(
            features=None if self.features is None else tuple(self.features),
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            class_weight=None,
            half_life_days=None,
            cv_folds=0,
            random_state=self.random_state,
        )

    def fit(
        self, X: object, y: object, sample_weight: object | None = None, times: object | None = None
    ) -> StarterJIT:
        """Not available: a starter learns from several projects at once
        (:func:`defectops.training.starter.build_starter`)."""
        raise ModelError(
            "the starter model is built from several projects by defectops.training.starter.build_starter"
        )

    def adapt(self, history: pd.DataFrame) -> StarterJIT:
        """A copy fitted to one repository: the transformation learnt from ``history``'s feature columns (the
        repository's mined commits; labels are neither needed nor read)."""
        self._check_built()
        missing = [f for f in self.features_ if f not in history.columns]
        if missing:
            raise InputError(f"the history lacks the metric column(s) {', '.join(missing)}")
        numeric = history.loc[:, list(self.features_)].to_numpy(dtype=np.float64, na_value=np.nan)
        adapted = copy.deepcopy(self)
        adapted.transform_ = RepoTransform.fit(self.transform, numeric, self.features_)
        # "many lines added" in its reasons: against this repository's commits, the ones it is fitted to.
        adapted.typical_ = typical_ranges(numeric, list(self.features_))
        return adapted

    @property
    def adapted(self) -> bool:
        """Whether the per-repository transformation has been fitted (:meth:`adapt`)."""
        return getattr(self, "transform_", None) is not None

    def _check_built(self) -> None:
        if not hasattr(self, "booster_"):
            raise ModelError("this starter model has no booster (build it with build_starter)")

    def _transformed(self, inputs: Inputs) -> Inputs:
        self._check_built()
        transform: RepoTransform | None = getattr(self, "transform_", None)
        if transform is None:
            raise ModelError(
                "the starter model is not fitted to a repository yet: adapt it to the repository's mined "
                "history first"
            )
        if not np.isfinite(inputs.numeric).all():
            raise InputError("the starter model needs finite values of every change metric")
        return Inputs(transform.apply(inputs.numeric))

    def _inner(self) -> LightGBMJIT:
        inner = self.booster_model()
        inner.features_ = list(self.features_)
        inner.booster_ = self.booster_
        return inner

    # ------------------------------------------------------------------ JITModel hooks

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        """Fit the booster on already transformed rows (used by the builder, never on one repository)."""
        inner = self.booster_model()
        inner.features_ = list(self.features_)
        inner._fit_core(inputs, y, w)
        self.booster_ = inner.booster_

    def _raw(self, inputs: Inputs) -> FloatArray:
        return self._inner()._raw(self._transformed(inputs))

    def raw_transformed(self, numeric: FloatArray) -> FloatArray:
        """Raw booster scores of rows that are already transformed (the builder's out-of-project scores)."""
        return self._inner()._raw(Inputs(np.asarray(numeric, dtype=np.float64)))

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        terms = self._inner()._terms(self._transformed(inputs))
        return [
            (bias, [(name, float(inputs.numeric[i, j]), term) for j, (name, _z, term) in enumerate(row)])
            for i, (bias, row) in enumerate(terms)
        ]

    def _state(self) -> dict[str, Any]:
        transform: RepoTransform | None = getattr(self, "transform_", None)
        return {"transform": None if transform is None else transform.state()}

    def _save_files(self, folder: Path) -> None:
        self.booster_.save_model(str(folder / "booster.txt"))

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        saved = state.get("transform")
        self.transform_ = None if saved is None else RepoTransform.from_state(saved)

    def __getstate__(self) -> dict[str, Any]:
        # As LightGBMJIT: the booster travels as LightGBM's text model (plain data in pickles, skops files).
        state: dict[str, Any] = dict(super().__getstate__())
        booster = state.pop("booster_", None)
        if booster is not None:
            state["booster_text_"] = booster.model_to_string()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        text = state.pop("booster_text_", None)
        super().__setstate__(state)
        if text is not None:
            import lightgbm as lgb

            self.booster_ = lgb.Booster(model_str=text)
