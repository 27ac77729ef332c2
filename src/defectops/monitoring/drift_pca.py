"""Multivariate drift: PCA reconstruction error of the window against a band from reference chunks."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from defectops.config import MonitoringSettings
from defectops.errors import InputError
from defectops.monitoring.drift_records import MultivariateDrift
from defectops.monitoring.drift_stats import FloatArray

_MAX_PLOTTED_CHUNKS = 500
_MIN_BAND_HALF_WIDTH = 1e-6


class PCAReconstructionDrift:
    """Multivariate drift: how badly a PCA fitted on the reference reconstructs the window.

    Fit: median imputation, standard scaling and a PCA keeping the fewest components that explain
    ``pca_variance`` of the reference variance, but never all of them (at most p - 1 of p): with every
    component kept the reconstruction is exact and the error is rounding noise. Check: the reference's
    per-row errors (Euclidean norm of the residual in scaled space) are grouped in chunks of the comparison
    size; the band is their mean +- ``pca_band_sigmas`` std (at least 1e-6, so an exact linear dependency
    such as churn = la + ld gives a band of zero width plus rounding, not of rounding alone). The window's
    mean error outside the band is drift. A changed correlation between features raises the error even when
    every marginal distribution is unchanged.
    """

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings
        self.features: list[str] = []
        self._medians: FloatArray = np.empty(0)
        self._scaler: Any = None  # sklearn objects are untyped
        self._mean: FloatArray = np.empty(0)
        self._components: FloatArray = np.empty((0, 0))
        self._explained = 0.0
        self._reference_errors: FloatArray = np.empty(0)

    def fit(self, reference: pd.DataFrame, features: Sequence[str]) -> Self:
        """Fit imputation, scaler and PCA on the reference numeric features."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        if len(features) < 2:
            raise InputError("the multivariate check needs at least two numeric features")
        self.features = list(features)
        matrix = self._matrix(reference, fit=True)
        if len(matrix) < 2 * self.settings.pca_reference_chunks:
            needed = 2 * self.settings.pca_reference_chunks
            raise InputError(f"the multivariate check needs at least {needed} reference rows")
        scaler = StandardScaler().fit(matrix)
        # covariance_eigh: n_rows >> n_features, so the p x p eigenproblem is far cheaper than an SVD of X
        pca = PCA(n_components=None, svd_solver="covariance_eigh").fit(scaler.transform(matrix))
        cumulative = np.cumsum(pca.explained_variance_ratio_)
        keep = int(np.searchsorted(cumulative, self.settings.pca_variance - 1e-12)) + 1
        keep = max(1, min(keep, len(self.features) - 1))
        self._scaler = scaler
        self._mean = np.asarray(pca.mean_, dtype=np.float64)
        self._components = np.asarray(pca.components_[:keep], dtype=np.float64)
        self._explained = float(cumulative[keep - 1])
        self._reference_errors = self.row_errors(reference)
        return self

    def _matrix(self, frame: pd.DataFrame, *, fit: bool = False) -> FloatArray:
        matrix = np.column_stack(
            [frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in self.features]
        )
        matrix[~np.isfinite(matrix)] = np.nan
        if fit:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: median 0 below
                medians = np.nanmedian(matrix, axis=0)
            self._medians = np.where(np.isnan(medians), 0.0, medians)
        rows, cols = np.nonzero(np.isnan(matrix))
        matrix[rows, cols] = self._medians[cols]
        return matrix

    def row_errors(self, frame: pd.DataFrame) -> FloatArray:
        """Per-row reconstruction error (Euclidean norm of the residual in scaled space)."""
        if self._scaler is None:
            raise InputError("PCAReconstructionDrift.fit must be called before checking a window")
        centred = self._scaler.transform(self._matrix(frame)) - self._mean
        restored = (centred @ self._components.T) @ self._components
        errors: FloatArray = np.linalg.norm(centred - restored, axis=1)
        return errors

    def check(self, window: pd.DataFrame) -> MultivariateDrift:
        """Compare the window's mean reconstruction error with the reference band."""
        errors = self.row_errors(window)
        n_ref = len(self._reference_errors)
        if len(errors) < self.settings.min_samples:
            raise InputError(f"the multivariate check needs at least {self.settings.min_samples} window rows")
        chunk = max(1, min(len(errors), n_ref // self.settings.pca_reference_chunks))
        ref_chunks = _chunk_means(self._reference_errors, chunk)
        win_chunks = _chunk_means(errors, chunk)
        mean = float(np.mean(ref_chunks))
        std = float(np.std(ref_chunks, ddof=1))
        half_width = max(self.settings.pca_band_sigmas * std, _MIN_BAND_HALF_WIDTH)
        lower, upper = mean - half_width, mean + half_width
        window_error = float(np.mean(errors))
        return MultivariateDrift(
            features=self.features,
            n_components=len(self._components),
            explained_variance=self._explained,
            chunk_size=chunk,
            n_reference_chunks=len(ref_chunks),
            reference_error_mean=mean,
            reference_error_std=std,
            band_lower=lower,
            band_upper=upper,
            window_error=window_error,
            window_chunk_errors=[float(v) for v in win_chunks[-_MAX_PLOTTED_CHUNKS:]],
            reference_chunk_errors=[float(v) for v in ref_chunks[:_MAX_PLOTTED_CHUNKS]],
            chunks_outside_band=int(np.sum((win_chunks < lower) | (win_chunks > upper))),
            drift_detected=not lower <= window_error <= upper,
        )


def _chunk_means(errors: FloatArray, size: int) -> FloatArray:
    usable = (len(errors) // size) * size
    means: FloatArray = errors[:usable].reshape(-1, size).mean(axis=1)
    return means
