"""Settings of event-driven scoring (environment ``DEFECTOPS_EVENTS_*``): ``defectops events serve|work``.

Why a subtree of its own: the webhook receiver holds a shared secret with GitHub, and the workers need the
stream, the repositories they may mirror and the model they score with; neither ``serve`` nor ``mine`` needs
any of it. :meth:`EventsSettings.check` refuses unsafe settings before anything listens: outside local mode
the webhook secret must be set, as strong as the service's tokens
(:data:`defectops.config.serve.MIN_TOKEN_BITS` bits) and differ from :data:`LOCAL_WEBHOOK_SECRET`; an empty
secret is refused in every mode. In local mode an unset secret falls back to the documented local value,
accepted only while the receiver listens on a loopback address.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from defectops.config.serve import MIN_TOKEN_BITS, check_token_strength, is_loopback
from defectops.errors import ConfigError

if TYPE_CHECKING:
    from defectops.config.core import Settings

#: The webhook secret of local mode when none is configured (loopback only).
LOCAL_WEBHOOK_SECRET: Final = "defectops-local-webhook"  # noqa: S105 - documented local default, loopback only
#: Shortest webhook secret accepted outside local mode.

_FULL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}$")


class EventsSettings(BaseSettings):
    """Every setting of ``defectops events``; the environment prefix is ``DEFECTOPS_EVENTS_``."""

    model_config = SettingsConfigDict(
        env_prefix="DEFECTOPS_EVENTS_", extra="ignore", frozen=True, populate_by_name=True
    )

    secret: SecretStr | None = Field(
        default=None, description="The webhook secret shared with GitHub (required outside local mode)."
    )
    host: str = Field(default="127.0.0.1", description="Address the receiver listens on.")
    port: int = Field(default=8100, ge=0, le=65535, description="TCP port of the receiver.")
    backend: Literal["redis", "kafka"] = Field(default="redis", description="The durable stream.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis of the stream.")
    kafka_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers (host:port, comma-separated)."
    )
    kafka_partitions: int = Field(
        default=6, ge=1, le=1000, description="Partitions of the event topic when the adapter creates it."
    )
    kafka_state_url: str | None = Field(
        default=None,
        description="SQL database of the Kafka adapter's delivery ids and claims; default: the workspace's.",
    )
    stream: str = Field(default="defectops:events", description="Stream (Redis key or Kafka topic).")
    group: str = Field(default="defectops-workers", description="Consumer group of the workers.")
    redis_connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to open a connection to Redis before failing."
    )
    redis_read_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds a Redis command may wait for its answer (a worker's blocking read waits block_ms more)."
        ),
    )
    stream_retry_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description=(
            "How long a worker waits out an unreachable stream (Redis, the Kafka broker or its ledger), "
            "retrying with backoff, before it exits with code 11; 0: it never gives up."
        ),
    )
    visibility_timeout: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="Seconds an event may stay unacknowledged before another worker claims it.",
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Deliveries of one event before it goes to the dead letters."
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Largest accepted webhook body; more is 413."
    )
    dedupe_hours: float = Field(
        default=72.0, gt=0, description="How long a delivery id is remembered (a replay within is a no-op)."
    )
    repositories: dict[str, str] = Field(
        default_factory=dict,
        description="Repositories events are scored for, as {owner/name: clone URL or path} (JSON).",
    )
    model_name: str | None = Field(
        default=None, description="Registered model whose champion scores (challenger in shadow)."
    )
    model_dir: Path | None = Field(
        default=None, description="A folder from `defectops models export` instead of the registry."
    )
    challenger_dir: Path | None = Field(
        default=None, description="With model_dir: a second exported folder scored in shadow."
    )
    report: Literal["check-run", "status"] = Field(
        default="check-run", description="How results go back to GitHub: a check run or a commit status."
    )
    check_name: str = Field(default="defectops risk", description="Name of the check run (or status).")
    max_commits: int = Field(default=50, ge=1, le=1000, description="Most commits scored for one event.")
    block_ms: int = Field(default=1000, ge=1, le=60000, description="How long a worker waits for events.")
    log_url: str | None = Field(default=None, description="Prediction log URL; default: the workspace's.")

    @field_validator("repositories")
    @classmethod
    def _check_repositories(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not _FULL_NAME.match(name):
                raise ValueError(f"repository {name!r}: use GitHub's owner/name")
            if not source.strip():
                raise ValueError(f"repository {name!r}: the clone URL or path is empty")
        return {name.lower(): source for name, source in value.items()}

    def check(self, settings: Settings) -> str:
        """Refuse unsafe settings (ConfigError); return the webhook secret in effect (never logged)."""
        local = settings.mode.strip().lower() == "local"
        secret = self.secret.get_secret_value() if self.secret is not None else None
        if secret is not None and not secret.strip():
            raise ConfigError("DEFECTOPS_EVENTS_SECRET is empty; set a random secret or unset it")
        if not local:
            if secret is None:
                raise ConfigError(
                    f"mode {settings.mode!r} needs a webhook secret: set DEFECTOPS_EVENTS_SECRET to the "
                    f"secret of the GitHub webhook ({MIN_TOKEN_BITS} bits or more: `openssl rand -hex 32`)"
                )
            if secret == LOCAL_WEBHOOK_SECRET:
                raise ConfigError(f"mode {settings.mode!r} refuses the well-known local webhook secret")
        if secret is not None and (not local or not is_loopback(self.host)):
            # The same strength rule as the service's tokens (config.serve.token_bits: 128 bits).
            check_token_strength("DEFECTOPS_EVENTS_SECRET", secret)
        effective = secret if secret is not None else LOCAL_WEBHOOK_SECRET
        if effective == LOCAL_WEBHOOK_SECRET and not is_loopback(self.host):
            raise ConfigError(
                f"the local default webhook secret is only allowed on a loopback address, not {self.host!r}; "
                "set DEFECTOPS_EVENTS_SECRET"
            )
        if self.model_dir is None and self.challenger_dir is not None:
            raise ConfigError("DEFECTOPS_EVENTS_CHALLENGER_DIR needs DEFECTOPS_EVENTS_MODEL_DIR")
        return effective
