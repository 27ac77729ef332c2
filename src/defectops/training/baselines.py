"""Reference rankings from the effort-aware JIT literature, for benchmarks on the same harness.

* :class:`EffortAwareLinearRegression` (EALR, Kamei et al. TSE 2013): a linear regression of the defect
  density ``label / (churn + 1)`` on the change metrics; changes are inspected by predicted density. As in
  Kamei et al. and its replications (Yang et al. FSE'16, Fu & Menzies FSE'17): LT and NUC are normalised by
  NF, the metrics are log1p-transformed (except FIX), LA and LD are left out (the target already divides by
  churn), ND and REXP are left out (highly correlated with NF and EXP), and the training data are randomly
  under-sampled to balance the classes. The stepwise (BIC) and VIF variable selection of the R scripts is
  not reproduced.
* :func:`smaller_lt_first` (Yang et al. FSE'16, "LT"): the unsupervised ranking ``1 / (LT + 1)`` on raw LT.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.errors import InputError

FloatArray = npt.NDArray[np.float64]

EALR_FEATURES: tuple[str, ...] = (
    "ns",
    "nf",
    "entropy",
    "lt_per_file",
    "fix",
    "ndev",
    "age",
    "nuc_per_file",
    "exp",
    "sexp",
)


def _ealr_design(frame: pd.DataFrame) -> FloatArray:
    needed = {"ns", "nf", "entropy", "lt", "fix", "ndev", "age", "nuc", "exp", "sexp"}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise InputError(f"EALR needs the column(s) {', '.join(missing)}")
    nf = np.maximum(frame["nf"].to_numpy(dtype=np.float64), 1.0)
    columns = {
        "ns": frame["ns"].to_numpy(dtype=np.float64),
        "nf": frame["nf"].to_numpy(dtype=np.float64),
        "entropy": frame["entropy"].to_numpy(dtype=np.float64),
        "lt_per_file": frame["lt"].to_numpy(dtype=np.float64) / nf,
        "fix": frame["fix"].to_numpy(dtype=np.float64),
        "ndev": frame["ndev"].to_numpy(dtype=np.float64),
        "age": frame["age"].to_numpy(dtype=np.float64),
        "nuc_per_file": frame["nuc"].to_numpy(dtype=np.float64) / nf,
        "exp": frame["exp"].to_numpy(dtype=np.float64),
        "sexp": frame["sexp"].to_numpy(dtype=np.float64),
    }
    return np.column_stack(
        [columns[n] if n == "fix" else np.log1p(np.maximum(columns[n], 0.0)) for n in EALR_FEATURES]
    )


class EffortAwareLinearRegression:
    """EALR: predicts defect density; rank changes by :meth:`predict` (higher first)."""

    def __init__(self, undersample: bool = True, random_state: int = 0) -> None:
        self.undersample = undersample
        self.random_state = random_state

    def fit(self, frame: pd.DataFrame, y: object, effort: object) -> EffortAwareLinearRegression:
        from sklearn.linear_model import LinearRegression

        labels = np.asarray(y, dtype=np.float64).ravel()
        efforts = np.asarray(effort, dtype=np.float64).ravel()
        design = _ealr_design(frame)
        rows = np.arange(len(labels))
        if self.undersample:
            rng = np.random.default_rng(self.random_state)
            pos, neg = rows[labels == 1], rows[labels == 0]
            if len(pos) and len(neg):
                small, large = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
                rows = np.sort(np.r_[small, rng.choice(large, size=len(small), replace=False)])
        self.model_ = LinearRegression().fit(design[rows], labels[rows] / (efforts[rows] + 1.0))
        return self

    def predict(self, frame: pd.DataFrame) -> FloatArray:
        result: FloatArray = np.asarray(self.model_.predict(_ealr_design(frame)), dtype=np.float64)
        return result


def smaller_lt_first(frame: pd.DataFrame) -> FloatArray:
    """Yang et al.'s unsupervised LT model: score ``1 / (LT + 1)`` (smaller files before the change first)."""
    if "lt" not in frame.columns:
        raise InputError("the LT ranking needs the column lt")
    result: FloatArray = 1.0 / (frame["lt"].to_numpy(dtype=np.float64) + 1.0)
    return result
