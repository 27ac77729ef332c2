"""LightGBM, the default model (``lightgbm``): gradient-boosted trees explained by TreeSHAP."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.training.models.base import JITModel
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.persistence import PERSISTED_MODULE
from defectops.training.treeshap import TreeShapTables


class LightGBMJIT(JITModel):
    """Gradient-boosted trees (LightGBM), the default. Keeps a raw :class:`lightgbm.Booster` so that scoring
    one change is a single ``Booster.predict`` on a NumPy row (no wrapper overhead).

    Defaults: small extremely-randomised trees (8 leaves, 200 rounds, leaves of at least 1% of the rows
    within [5, 50]) that work from a 2-month window of a small project to tens of thousands of changes, and
    a one-year recency half-life (what makes a change risky drifts; McIntosh & Kamei, TSE 2018)."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "lightgbm"
    #: TreeSHAP tables of ``booster_`` (built on first use; never pickled), with the booster they belong to.
    _treeshap: tuple[Any, TreeShapTables | None]

    def __init__(
        self,
        features: Sequence[str] | None = None,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int | None = None,
        colsample_bytree: float = 0.8,
        subsample: float = 0.8,
        reg_lambda: float = 1.0,
        extra_trees: bool = True,
        max_bin: int = 255,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = 365.0,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.extra_trees = extra_trees
        self.max_bin = max_bin
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _min_leaf(self, n_rows: int) -> int:
        """``min_child_samples``, or when None a size-aware default: 1% of the rows, within [5, 50] (a
        2-month window of a small project has ~100 changes; leaves of 50 would leave almost no splits)."""
        if self.min_child_samples is not None:
            return int(self.min_child_samples)
        return int(min(max(n_rows // 100, 5), 50))

    def _lgb_params(self, n_rows: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self._min_leaf(n_rows),
            "feature_fraction": self.colsample_bytree,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "lambda_l2": self.reg_lambda,
            "extra_trees": self.extra_trees,
            "max_bin": self.max_bin,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        import lightgbm as lgb

        data = lgb.Dataset(
            inputs.numeric,
            label=y,
            weight=w,
            feature_name=[_lgb_name(n) for n in self.features_],
            params={"max_bin": self.max_bin, "verbosity": -1},
            free_raw_data=True,
        )
        self.booster_ = lgb.train(self._lgb_params(len(y)), data, num_boost_round=self.n_estimators)
        self.__dict__.pop("_treeshap", None)

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.booster_.predict(inputs.numeric, raw_score=True, num_threads=1), dtype=np.float64
        )
        return result

    def predict_one(self, row: Sequence[float]) -> float:
        """Calibrated probability for one change given as values in :attr:`features_` order (the fast path
        for serving: one ``Booster.predict`` call on a 1 x n NumPy array)."""
        self._check_fitted()
        raw = self.booster_.predict(
            np.asarray(row, dtype=np.float64).reshape(1, -1), raw_score=True, num_threads=1
        )
        a, b, _ = self.calibration_
        return float(1.0 / (1.0 + math.exp(-(a * float(raw[0]) + b))))

    def _shap_tables(self) -> TreeShapTables | None:
        """The TreeSHAP tables of the current booster, built on first use (None: the booster has none)."""
        cached = self.__dict__.get("_treeshap")
        if cached is None or cached[0] is not self.booster_:
            cached = (self.booster_, TreeShapTables.from_booster(self.booster_, len(self.features_)))
            self._treeshap = cached
        tables: TreeShapTables | None = cached[1]
        return tables

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        tables = self._shap_tables()
        if tables is not None:
            contrib = tables.contributions(inputs.numeric)
        else:
            contrib = np.asarray(self.booster_.predict(inputs.numeric, pred_contrib=True, num_threads=1))
        out = []
        for i in range(len(inputs)):
            terms = [
                (name, float(inputs.numeric[i, j]), float(contrib[i, j]))
                for j, name in enumerate(self.features_)
            ]
            out.append((float(contrib[i, -1]), terms))
        return out

    def _save_files(self, folder: Path) -> None:
        self.booster_.save_model(str(folder / "booster.txt"))

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        self.__dict__.pop("_treeshap", None)

    def __getstate__(self) -> dict[str, Any]:
        # The booster travels as LightGBM's own text model, so pickles and skops files hold only plain data.
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("_treeshap", None)  # derived from the booster: rebuilt on first use
        booster = state.pop("booster_", None)
        if booster is not None:
            state["booster_text_"] = booster.model_to_string()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.pop("_treeshap", None)
        text = state.pop("booster_text_", None)
        super().__setstate__(state)
        if text is not None:
            import lightgbm as lgb

            self.booster_ = lgb.Booster(model_str=text)


def _lgb_name(name: str) -> str:
    """LightGBM refuses some characters in feature names; the mapping is only for its own files."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) or "f"
