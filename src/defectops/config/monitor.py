"""Monitoring settings: the thresholds of every check (``DEFECTOPS_MONITOR_*``) and where alerts go
(``DEFECTOPS_ALERT_*``).

Why one model: the self-healing loop, the service and ``defectops monitor`` must agree on what counts as
drift, and every number must be overridable without code (environment ``DEFECTOPS_MONITOR_*``). The reasoning
behind each default is in docs/monitoring.md; the short version is in each field's description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from defectops.config.serve import is_loopback
from defectops.errors import ConfigError


class MonitoringSettings(BaseSettings):
    """Every threshold the drift and performance checks use (env prefix ``DEFECTOPS_MONITOR_``)."""

    model_config = SettingsConfigDict(env_prefix="DEFECTOPS_MONITOR_", extra="ignore", frozen=True)

    # --- univariate tests -----------------------------------------------------------------------------
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Family-wise false-alarm rate of the p-value tests (KS, chi-square) of one window; split "
        "equally over the features and the score (Bonferroni).",
    )
    large_sample_size: int = Field(
        default=10_000,
        ge=2,
        description="When both samples have at least this many values, distances (Wasserstein, "
        "Jensen-Shannon) replace p-value tests: with this much data KS/chi-square flag shifts too small to "
        "matter.",
    )
    wasserstein_threshold: float = Field(
        default=0.1,
        gt=0,
        description="Drift when the Wasserstein distance divided by the reference IQR (std if the IQR is 0) "
        "exceeds this, both samples clipped to the reference's 1st-99th percentile; 0.1 IQR is a mean shift "
        "of about 0.135 std for a normal feature.",
    )
    jensen_shannon_threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Drift when the Jensen-Shannon distance (base 2, in [0, 1]) exceeds this; 0.1 is about a "
        "new category taking 2% of the window.",
    )
    discrete_max_levels: int = Field(
        default=5,
        ge=0,
        description="Numeric features with at most this many distinct reference values (flags, small counts) "
        "are tested as categorical: KS is conservative and weak on heavily tied data.",
    )
    max_categories: int = Field(
        default=50,
        ge=1,
        description="Categorical features keep their most frequent reference categories; rarer ones become "
        "'__other__', unseen window values '__new__'.",
    )
    min_samples: int = Field(
        default=30, ge=2, description="A test with fewer non-missing values on either side is skipped."
    )

    # --- PSI -------------------------------------------------------------------------------------------
    psi_bins: int = Field(default=10, ge=2, description="Quantile bins taken from the reference for PSI.")
    psi_epsilon: float = Field(
        default=1e-4, gt=0, description="Share used for an empty bin so PSI stays finite."
    )
    psi_moderate: float = Field(default=0.1, gt=0, description="PSI at or above this: moderate shift.")
    psi_significant: float = Field(
        default=0.25, gt=0, description="PSI at or above this: significant shift, counted as drift."
    )

    # --- multivariate ----------------------------------------------------------------------------------
    pca_variance: float = Field(
        default=0.9, gt=0, lt=1, description="Share of reference variance the PCA keeps."
    )
    pca_band_sigmas: float = Field(
        default=3.0, gt=0, description="Band = mean +- this many std of the reference chunk errors."
    )
    pca_reference_chunks: int = Field(
        default=10,
        ge=3,
        description="At least this many reference chunks define the band; the chunk size is the window size "
        "or reference size / this, whichever is smaller.",
    )

    # --- streaming detectors ---------------------------------------------------------------------------
    page_hinkley_delta: float = Field(
        default=0.005, ge=0, description="Page-Hinkley tolerance: changes of the mean below this are ignored."
    )
    page_hinkley_threshold: float = Field(
        default=50.0, gt=0, description="Page-Hinkley alarm level of the cumulative deviation."
    )
    page_hinkley_min_instances: int = Field(
        default=30, ge=1, description="Page-Hinkley stays silent until it has seen this many values."
    )
    adwin_delta: float = Field(default=0.002, gt=0, lt=1, description="ADWIN confidence parameter.")
    adwin_clock: int = Field(default=32, ge=1, description="ADWIN checks for a cut every this many values.")
    adwin_max_window: int = Field(
        default=10_000, ge=10, description="ADWIN keeps at most this many recent values (memory bound)."
    )
    stream_warmup: int = Field(
        default=5000,
        ge=0,
        description="The streaming detectors first see up to this many reference values (the last ones), so "
        "their baseline is the reference and not the start of the window.",
    )

    # --- performance -----------------------------------------------------------------------------------
    decision_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Score at or above which a change is predicted defective."
    )
    high_risk_threshold: float = Field(
        default=0.8, gt=0, lt=1, description="Score at or above which a change counts as high risk."
    )
    effort_share: float = Field(
        default=0.2, gt=0, le=1, description="Share of total churn inspected for Recall@effort."
    )
    effort_ranking: Literal["density", "risk"] = Field(
        default="density",
        description="Inspection order for Recall@effort, as in defectops.training.metrics: 'density' "
        "(score / max(churn, 1), the training default) or 'risk' (score).",
    )
    min_realized_labels: int = Field(
        default=30,
        ge=1,
        description="Realized metrics need this many matured labels; fewer are shown as 'not enough labels "
        "(n=...)', never as a number (ROC-AUC on 3 labels is 0 or 1 by chance).",
    )
    min_realized_per_class: int = Field(
        default=5,
        ge=1,
        description="ROC-AUC and recall also need this many defective (and, for ROC-AUC, clean) labels.",
    )

    # --- alarms ----------------------------------------------------------------------------------------
    min_alarm_predictions: int = Field(
        default=100,
        ge=1,
        description="A window with fewer predictions never raises an alarm (its drift is still reported).",
    )
    alarm_feature_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Material drift of at least this share of the feature groups (features that move "
        "together count once) is a drift signal: 'many features' read as at least half of them. Fewer "
        "drifting groups are diagnosis. 0.3 until 2026-12-05 (docs/benchmarks.md: on numpy 4 of 13 groups, "
        "31%, drifted in quiet weeks).",
    )
    alarm_drift_psi: float = Field(
        default=0.25,
        ge=0,
        description="Drift of a feature or of the score counts towards an alarm only when its PSI is at "
        "least this as well as its test significant: 0.25 is the conventional 'significant shift' of PSI. A "
        "p-value alone on ~100 rows flags shifts too small to matter. "
        "0 counts every significant test (the policy before 2026-12).",
    )
    alarm_drift_checks: int = Field(
        default=2,
        ge=1,
        description="Drift of the score or of many feature groups is an alarm only when it is found in this "
        "many consecutive checks of the same model (this one included): a single week's drift is diagnosis. "
        "1 alarms on one check (the policy before 2026-12). Performance alarms need no confirmation.",
    )
    alarm_on_streams: bool = Field(
        default=False,
        description="Whether a change seen by the streaming detectors on the score (Page-Hinkley, ADWIN) is "
        "an alarm by itself; off: they have no effect size, and they are shown as diagnosis.",
    )
    newcomer_max_experience: float = Field(
        default=10.0,
        gt=0,
        description="A change is by a newcomer when its author made fewer than this many earlier changes "
        "(exp) in the project (defectops.monitoring.newcomers).",
    )
    newcomer_min_ratio: float = Field(
        default=2.0,
        ge=1,
        description="The newcomers' share in the window signals a new team only when at least this many "
        "times the reference's share (and newcomer_min_increase above it, and significant at alpha).",
    )
    newcomer_min_increase: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="... and at least this much (a share, 0.10 = 10 points) above the reference's share.",
    )
    newcomer_alarm: bool = Field(
        default=False,
        description="Whether a newcomer signal sustained over alarm_drift_checks checks is an alarm. Off: "
        "it is diagnosis (shown, recorded, not acting). On numpy's 12-month replay a real wave of new "
        "contributors with no performance drop raised it in summer 2026 (docs/benchmarks.md).",
    )
    label_horizon_days: float = Field(
        default=365.0,
        gt=0,
        description="Realized performance is judged on the labels that arrived during the monitored window "
        "for served commits up to this many days old (labels mature late: a clean label after the waiting "
        "period, so a window's own commits rarely have enough).",
    )
    max_performance_drop: float = Field(
        default=0.05,
        ge=0,
        description="Realized (or, without enough labels, estimated) ROC-AUC this far below the model's "
        "held-out ROC-AUC at training is an alarm (the heal loop's max_roc_auc_drop).",
    )
    trend_months: int = Field(
        default=24,
        ge=3,
        description="Features that grow with project age are compared after removing the trend fitted on "
        "this many last months of the training history.",
    )
    score_at_window_time: bool = Field(
        default=True,
        description="Judge the score's drift against the model's scores on the reference with its "
        "age-growing features advanced to the window's time along their fitted growth (when the model is "
        "at hand), so that the project's normal ageing does not read as score drift.",
    )

    calibration_bins: int = Field(
        default=10, ge=2, description="Equal-width bins for the expected calibration error."
    )
    max_calibration_error: float = Field(
        default=0.05,
        gt=0,
        description="CBPE estimates are flagged unreliable when the reference ECE is above this.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.psi_moderate >= self.psi_significant:
            raise ConfigError("psi_moderate must be below psi_significant")
        if self.high_risk_threshold < self.decision_threshold:
            raise ConfigError("high_risk_threshold must not be below decision_threshold")
        return self


def load_monitoring_settings(**overrides: object) -> MonitoringSettings:
    """Read the settings from the environment (plus overrides), turning validation errors into ConfigError."""
    from pydantic import ValidationError

    try:
        return MonitoringSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"invalid monitoring setting {where}: {first['msg']}") from None


Channel = Literal["webhook", "email"]


class AlertSettings(BaseSettings):
    """Where alerts go (env prefix ``DEFECTOPS_ALERT_``); a channel is on when its target is set."""

    model_config = SettingsConfigDict(env_prefix="DEFECTOPS_ALERT_", extra="ignore", frozen=True)

    webhook_url: SecretStr | None = Field(
        default=None, description="Slack-compatible incoming webhook (POST {'text': ...}); a secret."
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds before a webhook call fails.")
    smtp_host: str | None = Field(default=None, description="SMTP server; e-mail alerts are off without it.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="starttls", description="'starttls' (port 587), 'ssl' (implicit TLS, port 465) or 'none'."
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str | None = Field(default=None, description="From address.")
    smtp_recipients: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="To addresses (comma-separated in the environment)."
    )
    smtp_timeout: float = Field(default=10.0, gt=0)
    smtp_ca_file: Path | None = Field(
        default=None, description="Extra CA bundle to trust (a private mail server); system CAs otherwise."
    )

    @field_validator("smtp_recipients", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.smtp_host is None:
            return self
        if not self.smtp_sender or not self.smtp_recipients:
            raise ConfigError("e-mail alerts need a sender and at least one recipient")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ConfigError("SMTP username and password go together")
        plain = self.smtp_security == "none" and not is_loopback(self.smtp_host)
        if self.smtp_username is not None and plain:
            raise ConfigError("refusing to send SMTP credentials unencrypted; use starttls or ssl")
        return self

    @property
    def channels(self) -> list[Channel]:
        """The configured channels."""
        channels: list[Channel] = []
        if self.webhook_url is not None:
            channels.append("webhook")
        if self.smtp_host is not None:
            channels.append("email")
        return channels


def load_alert_settings(**overrides: object) -> AlertSettings:
    """Read the settings from the environment (plus overrides); invalid values become ConfigError."""
    try:
        return AlertSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"invalid alert setting {where}: {first['msg']}") from None
