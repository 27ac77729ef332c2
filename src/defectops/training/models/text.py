"""The JITLine-style text model (``text``): change metrics plus TF-IDF of the message and changed paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from defectops.training.models.base import JITModel
from defectops.training.models.inputs import FloatArray, Inputs
from defectops.training.models.linear import _Standardiser
from defectops.training.models.persistence import PERSISTED_MODULE, skops_dump, skops_load


def _path_tokens(text: str) -> list[str]:
    """Tokens of changed paths (one per line): every directory, file stem and extension, lower-cased."""
    tokens: list[str] = []
    for path in (line.strip() for line in text.splitlines()):
        if not path:
            continue
        parts = [p for p in path.lower().replace("\\", "/").split("/") if p]
        for i, part in enumerate(parts):
            if i < len(parts) - 1:
                tokens.append(part + "/")
            else:
                stem, dot, ext = part.rpartition(".")
                tokens.append(stem if dot else part)
                if dot:
                    tokens.append("." + ext)
    return tokens


_path_tokens.__module__ = PERSISTED_MODULE  # referenced by saved text models (see persistence)


class TextJIT(JITModel):
    """JITLine-style: the change metrics (log1p, standardised) plus TF-IDF of the commit message words and
    of the changed paths' directories, file names and extensions, in one L2-regularised logistic regression
    (linear, so every term of an explanation is ``coef * value``; text terms are named ``msg:<word>`` and
    ``path:<token>``)."""

    __module__ = PERSISTED_MODULE  # the name saved models know it by (see persistence)

    kind = "text"
    _uses_text = True

    def __init__(
        self,
        features: Sequence[str] | None = None,
        C: float = 1.0,
        max_tokens: int = 5000,
        min_df: int = 2,
        class_weight: Literal["balanced"] | None = "balanced",
        half_life_days: float | None = None,
        cv_folds: int = 3,
        cv_gap_days: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.C = C
        self.max_tokens = max_tokens
        self.min_df = min_df
        self.class_weight = class_weight
        self.half_life_days = half_life_days
        self.cv_folds = cv_folds
        self.cv_gap_days = cv_gap_days
        self.random_state = random_state

    def _design(self, inputs: Inputs) -> Any:
        from scipy import sparse

        numeric = sparse.csr_matrix(self.scaler_.transform(np.nan_to_num(inputs.numeric)))
        msg = self.message_vectorizer_.transform(inputs.message or [])
        paths = self.path_vectorizer_.transform(inputs.paths or [])
        return sparse.hstack([numeric, msg, paths], format="csr")

    def _fit_core(self, inputs: Inputs, y: npt.NDArray[np.int64], w: FloatArray) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        min_df = self.min_df if len(y) >= 10 * self.min_df else 1
        self.scaler_ = _Standardiser.fit(np.nan_to_num(inputs.numeric))
        self.message_vectorizer_ = TfidfVectorizer(
            lowercase=True,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_]+\b",  # noqa: S106 - a regex, not a secret
            max_features=self.max_tokens,
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float64,
        ).fit(inputs.message or [])
        self.path_vectorizer_ = TfidfVectorizer(
            tokenizer=_path_tokens,
            token_pattern=None,
            lowercase=False,
            max_features=self.max_tokens,
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float64,
        ).fit(inputs.paths or [])
        self.text_names_ = [
            *(f"msg:{t}" for t in self.message_vectorizer_.get_feature_names_out()),
            *(f"path:{t}" for t in self.path_vectorizer_.get_feature_names_out()),
        ]
        lr = LogisticRegression(C=self.C, max_iter=5000, solver="liblinear", random_state=self.random_state)
        lr.fit(self._design(inputs), y, sample_weight=w)
        self.coef_ = np.asarray(lr.coef_[0], dtype=np.float64)
        self.intercept_ = float(lr.intercept_[0])

    def _raw(self, inputs: Inputs) -> FloatArray:
        result: FloatArray = np.asarray(self._design(inputs) @ self.coef_, dtype=np.float64) + self.intercept_
        return result

    def _terms(self, inputs: Inputs) -> list[tuple[float, list[tuple[str, float, float]]]]:
        design = self._design(inputs)
        names = [*self.features_, *self.text_names_]
        k = len(self.features_)
        out = []
        for i in range(len(inputs)):
            row = design.getrow(i)
            terms = []
            for j, value in zip(row.indices, row.data, strict=True):
                raw_value = float(inputs.numeric[i, j]) if j < k else float(value)
                terms.append((names[j], raw_value, float(value * self.coef_[j])))
            out.append((self.intercept_, terms))
        return out

    def _state(self) -> dict[str, Any]:
        return self.scaler_.state()

    def _save_files(self, folder: Path) -> None:
        skops_dump(
            {
                "message": self.message_vectorizer_.vocabulary_,
                "message_idf": self.message_vectorizer_.idf_,
                "paths": self.path_vectorizer_.vocabulary_,
                "paths_idf": self.path_vectorizer_.idf_,
                "coef": self.coef_,
                "intercept": self.intercept_,
            },
            folder / "text.skops",
        )

    def _restore(self, state: Mapping[str, Any], folder: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.scaler_ = _Standardiser.from_state(state)
        parts = skops_load(folder / "text.skops")
        self.message_vectorizer_ = TfidfVectorizer(
            lowercase=True,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_]+\b",  # noqa: S106 - a regex, not a secret
            sublinear_tf=True,
            vocabulary=parts["message"],
            dtype=np.float64,
        )
        self.message_vectorizer_.idf_ = parts["message_idf"]
        self.path_vectorizer_ = TfidfVectorizer(
            tokenizer=_path_tokens,
            token_pattern=None,
            lowercase=False,
            sublinear_tf=True,
            vocabulary=parts["paths"],
            dtype=np.float64,
        )
        self.path_vectorizer_.idf_ = parts["paths_idf"]
        self.text_names_ = [
            *(f"msg:{t}" for t in self.message_vectorizer_.get_feature_names_out()),
            *(f"path:{t}" for t in self.path_vectorizer_.get_feature_names_out()),
        ]
        self.coef_ = np.asarray(parts["coef"], dtype=np.float64)
        self.intercept_ = float(parts["intercept"])
