"""The hybrid model (``hybrid``): the change metrics plus transformer embeddings of the commit message and of
its changed lines, in one LightGBM model.

Per change, :mod:`defectops.training.embedding` (all-MiniLM-L6-v2 on onnxruntime, CPU, offline) turns the
commit message and the changed lines (column ``diff``: ``+``/``-`` lines under each file's path) into two
384-vectors, each cut to ``max_tokens`` tokens. A PCA per text, fitted on the training rows only (and refitted
inside every calibration fold on that fold's training rows), keeps ``n_components`` directions of each; they
are appended to the metrics as features ``msg_pc1..`` and ``diff_pc1..`` and the booster is the default
model's (:class:`~defectops.training.models.LightGBMJIT`, same parameters and defaults). Explanations are
TreeSHAP terms as for the default model: a text direction's term says how much the text moved the risk.

Every row is embedded once per ``fit``/``predict_proba`` call (the folds reuse the vectors), and the encoder
remembers recent texts, so refitting on the same changes does not embed them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.data import DIFF, MESSAGE
from defectops.errors import InputError, ModelError
from defectops.training.embedding import DIMENSION, ENCODER_NAME, require_encoder, shared_encoder
from defectops.training.models.boosting import LightGBMJIT, _lgb_name
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.persistence import PERSISTED_MODULE

#: The text columns the hybrid model reads, and the prefixes of their PCA features.
TEXT_INPUTS: tuple[tuple[str, str], ...] = ((MESSAGE, "msg"), (DIFF, "diff"))


def _pca(vectors: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """(mean, components k x d) of ``vectors``; each component's sign fixed so its largest loading is
    positive (SVD signs are arbitrary)."""
    mean = vectors.mean(axis=0)
    k = max(1, min(k, vectors.shape[0] - 1, vectors.shape[1]))
    centred = vectors - mean
    # The eigenvectors of the d x d scatter matrix (d = 384) rather than an SVD of the n x d rows: the same
    # directions, at a cost that hardly grows with the number of training changes.
    values, vectors_ = np.linalg.eigh(centred.T @ centred)
    components = vectors_[:, np.argsort(values)[::-1][:k]].T
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return mean, components * signs[:, None]


class HybridJIT(LightGBMJIT):
    """LightGBM on the change metrics plus PCA directions of the message and changed-lines embeddings."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "hybrid"

    def __init__(
        self,
        features: Sequence[str] | None = None,
        n_components: int = 8,
        max_tokens: int = 256,
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
        super().__init__(
            features=features,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            colsample_bytree=colsample_bytree,
            subsample=subsample,
            reg_lambda=reg_lambda,
            extra_trees=extra_trees,
            max_bin=max_bin,
            class_weight=class_weight,
            half_life_days=half_life_days,
            cv_folds=cv_folds,
            cv_gap_days=cv_gap_days,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        self.n_components = n_components
        self.max_tokens = max_tokens

    # ------------------------------------------------------------------ inputs

    def _inputs(self, X: object, features: Sequence[str] | None = None) -> Inputs:
        inputs = super()._inputs(X, features)
        columns = [c for c, _ in TEXT_INPUTS]
        frame: Any = X
        if not hasattr(frame, "columns") or any(c not in frame.columns for c in columns):
            raise InputError(
                f"the hybrid model needs the text columns '{MESSAGE}' and '{DIFF}' (the commit message and "
                "its changed lines): score commits from a repository, or add them to the table"
            )
        require_encoder()
        encoder = shared_encoder(self.max_tokens, self.n_jobs)
        parts = [encoder.encode(frame[c].fillna("").astype(str).tolist()) for c in columns]
        inputs.text_vectors = np.hstack(parts).astype(np.float64)
        return inputs

    def _design(self, inputs: Inputs) -> FloatArray:
        if inputs.text_vectors is None:
            raise ModelError("the hybrid model was given no text vectors")
        blocks = [inputs.numeric]
        for i, (mean, components) in enumerate(self.projections_):
            part = inputs.text_vectors[:, i * DIMENSION : (i + 1) * DIMENSION]
            blocks.append((part - mean) @ components.T)
        design: FloatArray = np.hstack(blocks)
        return design

    # ------------------------------------------------------------------ the LightGBM hooks, on the design

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        import lightgbm as lgb

        if inputs.text_vectors is None:
            raise ModelError("the hybrid model was given no text vectors")
        self.projections_ = [
            _pca(inputs.text_vectors[:, i * DIMENSION : (i + 1) * DIMENSION], self.n_components)
            for i in range(len(TEXT_INPUTS))
        ]
        self.text_names_ = [
            f"{prefix}_pc{j + 1}"
            for (_, prefix), (_, components) in zip(TEXT_INPUTS, self.projections_, strict=True)
            for j in range(components.shape[0])
        ]
        data = lgb.Dataset(
            self._design(inputs),
            label=y,
            weight=w,
            feature_name=[_lgb_name(n) for n in [*self.features_, *self.text_names_]],
            params={"max_bin": self.max_bin, "verbosity": -1},
            free_raw_data=True,
        )
        self.booster_ = lgb.train(self._lgb_params(len(y)), data, num_boost_round=self.n_estimators)

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = np.asarray(
            self.booster_.predict(self._design(inputs), raw_score=True, num_threads=1), dtype=np.float64
        )
        return result

    def predict_one(self, row: Sequence[float]) -> float:
        raise InputError("the hybrid model scores changes with their text: use predict_proba on a table")

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        design = self._design(inputs)
        contrib = np.asarray(self.booster_.predict(design, pred_contrib=True, num_threads=1))
        names = [*self.features_, *self.text_names_]
        return [
            (
                float(contrib[i, -1]),
                [(name, float(design[i, j]), float(contrib[i, j])) for j, name in enumerate(names)],
            )
            for i in range(len(inputs))
        ]

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, Any]:
        return {"encoder": ENCODER_NAME, "text_names": list(self.text_names_)}

    def _save_files(self, folder: Path) -> None:
        super()._save_files(folder)
        arrays: dict[str, FloatArray] = {}
        for i, (mean, components) in enumerate(self.projections_):
            arrays[f"mean{i}"], arrays[f"components{i}"] = mean, components
        np.savez(folder / "projections.npz", **arrays)  # type: ignore[arg-type]

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        super()._restore(state, folder)
        if state.get("encoder") != ENCODER_NAME:
            raise ValueError(f"trained with encoder {state.get('encoder')!r}, not {ENCODER_NAME}")
        with np.load(folder / "projections.npz", allow_pickle=False) as arrays:
            self.projections_ = [
                (np.asarray(arrays[f"mean{i}"]), np.asarray(arrays[f"components{i}"]))
                for i in range(len(TEXT_INPUTS))
            ]
        self.text_names_ = [str(n) for n in state["text_names"]]

    def input_columns(self) -> list[str]:
        return [*self.features_, *(c for c, _ in TEXT_INPUTS)]
