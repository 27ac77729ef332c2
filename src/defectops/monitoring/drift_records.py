"""The verdicts of the drift checks (:mod:`defectops.monitoring.drift`): per feature or score, multivariate,
and per streaming detector; frozen pydantic records, so they serialise into the monitoring result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

FeatureKind = Literal["numeric", "categorical"]
TestName = Literal["ks", "wasserstein", "chi2", "jensen_shannon"]
PsiLevel = Literal["ok", "moderate", "significant"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureDrift(_Record):
    """The drift verdict of one feature (or of the score) between the reference and the window.

    ``drift_score`` puts every test on one scale where 1 is the threshold: the distance divided by its
    threshold, or ``ln(p) / ln(alpha_per_test)`` for the p-value tests.
    """

    feature: str
    kind: FeatureKind
    test: TestName | None
    statistic: float | None
    p_value: float | None
    threshold: float
    drift_score: float | None
    psi: float | None
    psi_level: PsiLevel | None
    psi_noise_floor: float | None
    psi_counts: bool
    n_reference: int
    n_window: int
    missing_share_reference: float
    missing_share_window: float
    new_category_share: float | None
    drift_detected: bool
    skipped_reason: str | None = None


class MultivariateDrift(_Record):
    """PCA reconstruction error of the window against the band of reference chunk errors."""

    features: list[str]
    n_components: int
    explained_variance: float
    chunk_size: int
    n_reference_chunks: int
    reference_error_mean: float
    reference_error_std: float
    band_lower: float
    band_upper: float
    window_error: float
    window_chunk_errors: list[float]
    reference_chunk_errors: list[float]
    chunks_outside_band: int
    drift_detected: bool


class StreamDrift(_Record):
    """A streaming detector run over the window after a warm-up on the end of the reference."""

    detector: Literal["page_hinkley", "adwin"]
    target: Literal["score", "positive_rate"]
    n_warmup: int
    n_window: int
    detections: int
    first_detection: int | None
    drift_detected: bool
