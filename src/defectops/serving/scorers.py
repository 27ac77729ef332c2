"""The scorers of served models: the fastest exact way to score a NumPy matrix that a model allows.

Why not just call :func:`defectops.training.risk.score`: it goes through pandas and per-row Python, which
costs milliseconds per request. For the default model (LightGBM) one ``Booster.predict(pred_contrib=True)``
on a NumPy matrix gives everything at once: the exact TreeSHAP terms, whose sum is the raw score, hence the
calibrated probability, and the top reasons by a vectorised sort. The terms come from precomputed TreeSHAP
tables (:mod:`defectops.training.treeshap`: the same numbers, about 30x faster) when the model allows
them, else from LightGBM itself. The answer is the one
:func:`~defectops.training.risk.score` gives (same probability, band, label and reasons in the same order; a
test checks it), so a change gets the same answer from the service and from ``defectops predict``. Other
defectops models go through :func:`~defectops.training.risk.score` itself (:class:`ExplainScorer`); plain
scikit-learn classifiers get probabilities without reasons (:class:`ProbaScorer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.errors import ModelError
from defectops.registry import LoadedModel
from defectops.training import RiskBands, TreeShapTables, score

FloatArray = npt.NDArray[np.float64]
ReasonDict = dict[str, Any]
ScorerKind = Literal["booster", "explain", "proba"]


@dataclass(frozen=True, slots=True)
class Scores:
    """Probabilities of a block of rows and, per row, the reasons as JSON-ready dicts (largest first)."""

    probabilities: FloatArray
    reasons: list[list[ReasonDict]]


def _reason(feature: str, value: float, contribution: float) -> ReasonDict:
    # The same document as scoring.Reason.as_dict (a test compares them), built without the dataclass.
    return {
        "feature": feature,
        "value": value,
        "contribution": contribution,
        "direction": "raises" if contribution > 0 else "lowers",
    }


def _sigmoid(logit: FloatArray) -> FloatArray:
    # The formula of defectops.training.models._sigmoid, so probabilities match the model's own bit for bit
    # up to the order of summation.
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * logit))
    return result


#: Up to this many rows, reasons are sorted in Python rather than with NumPy (cheaper for tiny inputs).
_SMALL_BATCH: Final = 4
_PREDICT_RAW: Final = 1  # LightGBM's C_API_PREDICT_RAW_SCORE
_PREDICT_CONTRIB: Final = 3  # C_API_PREDICT_CONTRIB


class _DirectPredict:
    """``Booster.predict`` without its per-call Python overhead (about 60-80 us of a 1-row call).

    ``Booster.predict`` builds a predictor object, queries the iteration count and re-checks the input on
    every call; for one row that costs as much as the trees. This calls ``LGBM_BoosterPredictForMat`` directly
    on a C-contiguous float64 matrix with the same arguments ``Booster.predict`` passes. It uses LightGBM's
    ctypes handle, which is not public API: if it is missing, :meth:`for_booster` returns None and the
    public ``Booster.predict`` is used; the smoke test compares either path with ``predict_proba``.
    """

    def __init__(self, booster: Any) -> None:
        import ctypes

        from lightgbm import basic

        self._ctypes = ctypes
        self._lib = basic._LIB  # type: ignore[attr-defined]
        self._check = basic._safe_call
        self._handle = booster._handle
        self._params = basic._c_str("num_threads=1")
        self._features = int(booster.num_feature())
        best = int(getattr(booster, "best_iteration", 0) or 0)
        self._iterations = best if best > 0 else -1

    @classmethod
    def for_booster(cls, booster: Any) -> _DirectPredict | None:
        try:
            return cls(booster)
        except (ImportError, AttributeError):
            return None

    def __call__(self, values: FloatArray, predict_type: int) -> FloatArray:
        ctypes = self._ctypes
        data = np.ascontiguousarray(values, dtype=np.float64)
        rows = data.shape[0]
        width = self._features + 1 if predict_type == _PREDICT_CONTRIB else 1
        out = np.empty(rows * width, dtype=np.float64)
        written = ctypes.c_int64(0)
        self._check(
            self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                data.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(rows),
                ctypes.c_int32(data.shape[1]),
                ctypes.c_int(1),  # row major
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(self._iterations),
                self._params,
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if written.value != out.size:
            raise ModelError(f"LightGBM wrote {written.value} predictions, expected {out.size}")
        return out.reshape(rows, width) if width > 1 else out


class BoosterScorer:
    """The LightGBM fast path: the TreeSHAP terms of a NumPy matrix in one call, no pandas.

    The terms come from :class:`~defectops.training.treeshap.TreeShapTables` (built here, when the model is
    prepared) when the booster allows them, at any batch size (one row: about 30 us against LightGBM's
    100 us); otherwise, and for raw scores, from LightGBM's ``pred_contrib`` through :class:`_DirectPredict`.
    """

    kind: ScorerKind = "booster"

    def __init__(self, model: Any) -> None:
        self.booster = model.booster_
        self.direct = _DirectPredict.for_booster(self.booster)
        a, b, _ = model.calibration_
        self.a = float(a)
        self.b = float(b)
        self.names: list[str] = [str(name) for name in model.features_]
        # Ties in |contribution| are broken by feature name, as JITModel.explain does.
        order = sorted(range(len(self.names)), key=lambda j: self.names[j])
        self.name_rank = np.empty(len(self.names), dtype=np.int64)
        self.name_rank[order] = np.arange(len(self.names))
        self.name_array = np.array(self.names, dtype=object)
        self.tables = TreeShapTables.from_booster(self.booster, len(self.names))

    def __call__(self, values: FloatArray, text: Mapping[str, Sequence[str]] | None, top_k: int) -> Scores:
        del text
        n = values.shape[0]
        if top_k <= 0:
            # The TreeSHAP terms sum to the raw score, and the tables give them faster than LightGBM's own
            # raw prediction (2.5 vs 5.2 ms per 1,000 records for the default model).
            if self.tables is not None:
                _, logit = self._terms(self.tables.contributions(values))
                return Scores(_sigmoid(logit), [[] for _ in range(n)])
            raw = self._predict(values, _PREDICT_RAW)
            return Scores(_sigmoid(self.a * raw + self.b), [[] for _ in range(n)])
        if self.tables is not None:
            contrib = self.tables.contributions(values)
        else:
            contrib = self._predict(values, _PREDICT_CONTRIB)
        terms, logit = self._terms(contrib)
        k = min(top_k, terms.shape[1])
        names = self.names
        if n <= _SMALL_BATCH:
            # A few rows: sorting 14 Python floats beats the fixed cost of NumPy's sort and gathers.
            reasons = []
            for term_row, value_row in zip(terms.tolist(), values.tolist(), strict=True):
                order = sorted(range(len(names)), key=lambda j: (-abs(term_row[j]), names[j]))[:k]
                reasons.append([_reason(names[j], value_row[j], term_row[j]) for j in order])
            return Scores(_sigmoid(logit), reasons)
        ranks = np.broadcast_to(self.name_rank, terms.shape)
        top = np.lexsort((ranks, -np.abs(terms)), axis=-1)[:, :k]
        top_terms = np.take_along_axis(terms, top, axis=1)
        # Names, values and directions gathered by NumPy; the dicts built inline (the same documents as
        # _reason, whose call per reason would cost a third of the time).
        rows = zip(
            self.name_array[top].tolist(),
            np.take_along_axis(values, top, axis=1).tolist(),
            top_terms.tolist(),
            np.where(top_terms > 0, "raises", "lowers").tolist(),
            strict=True,
        )
        reasons = [
            [
                {"feature": name, "value": value, "contribution": term, "direction": direction}
                for name, value, term, direction in zip(
                    name_row, value_row, term_row, direction_row, strict=True
                )
            ]
            for name_row, value_row, term_row, direction_row in rows
        ]
        return Scores(_sigmoid(logit), reasons)

    def _terms(self, contrib: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Calibrated terms and logits from ``pred_contrib``-layout contributions (one formula for every
        path, so a record gets the same probability with and without reasons)."""
        terms: FloatArray = self.a * contrib[:, :-1]
        logit: FloatArray = (self.a * contrib[:, -1] + self.b) + terms.sum(axis=1)
        return terms, logit

    def _predict(self, values: FloatArray, predict_type: int) -> FloatArray:
        if self.direct is not None:
            return self.direct(values, predict_type)
        contrib = predict_type == _PREDICT_CONTRIB
        result = self.booster.predict(values, raw_score=not contrib, pred_contrib=contrib, num_threads=1)
        return np.asarray(result, dtype=np.float64)


class ExplainScorer:
    """Any other defectops model: the shared :func:`~defectops.training.risk.score` on a DataFrame."""

    kind: ScorerKind = "explain"

    def __init__(self, model: Any, features: Sequence[str], threshold: float, bands: RiskBands) -> None:
        self.model = model
        self.features = list(features)
        self.threshold = threshold
        self.bands = bands

    def __call__(self, values: FloatArray, text: Mapping[str, Sequence[str]] | None, top_k: int) -> Scores:
        frame = pd.DataFrame(values, columns=self.features)
        for name, column in (text or {}).items():
            frame[name] = list(column)
        if top_k <= 0:
            proba = np.asarray(self.model.predict_proba(frame), dtype=np.float64)[:, 1]
            return Scores(proba, [[] for _ in range(len(frame))])
        scored = score(
            self.model,
            frame,
            model_name="-",
            model_version="-",
            threshold=self.threshold,
            bands=self.bands,
            top_k=top_k,
        )
        return Scores(
            np.array([s.probability for s in scored], dtype=np.float64),
            [[r.as_dict() for r in s.reasons] for s in scored],
        )


class ProbaScorer:
    """A plain probabilistic classifier (no explanations): ``predict_proba`` only."""

    kind: ScorerKind = "proba"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def __call__(self, values: FloatArray, text: Mapping[str, Sequence[str]] | None, top_k: int) -> Scores:
        del top_k
        frame = pd.DataFrame(values, columns=list(self.loaded.meta.features))
        for name, column in (text or {}).items():
            frame[name] = list(column)
        proba = self.loaded.score(frame)
        return Scores(np.asarray(proba, dtype=np.float64), [[] for _ in range(len(frame))])


Scorer = Callable[[FloatArray, Mapping[str, Sequence[str]] | None, int], Scores]
